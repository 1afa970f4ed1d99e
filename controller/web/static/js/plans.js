// Plans: the current draft, applying it (operators only), the newest rollout, the history.

import { say, setText } from "./dom.js";
import { renderDraft, renderHistory, renderRollout } from "./plan_tables.js";
import { roleAllows } from "./session.js";

const $ = (id) => document.getElementById(id);

const drafts = new Map(); // a draft's assignments never change once written: fetch each once
let shownDraft = null;

/** Fetch the history, the draft's detail and the newest rollout's detail; render all three. */
export async function refreshPlans(api, me) {
  const plans = await api.get("plans", { limit: 20 });
  const draft = plans.find((p) => p.status === "draft") || null;
  const applied = plans.find((p) => p.params && p.params.rollout) || null;
  const [draftDetail, rolloutDetail] = await Promise.all([
    draft ? fetchDraft(api, draft.id) : null,
    applied ? api.get(`plans/${applied.id}`) : null,
  ]);
  shownDraft = draftDetail ? draftDetail.plan : null;
  setText($("draft-summary"), draftSummary(shownDraft));
  renderDraft(draftDetail);
  renderRollout(rolloutDetail);
  renderHistory(plans);
  updateApply(me);
}

function draftSummary(plan) {
  if (!plan) return "No draft: compute one to see what each device would run and why.";
  return `Draft plan ${plan.id} by ${plan.created_by || "the planner"}: ${plan.summary}.`;
}

async function fetchDraft(api, planId) {
  if (!drafts.has(planId)) {
    const detail = await api.get(`plans/${planId}`);
    drafts.clear(); // only the newest draft is ever shown
    drafts.set(planId, detail);
  }
  return drafts.get(planId);
}

function updateApply(me) {
  const button = $("apply-button");
  let reason = "";
  if (!roleAllows(me.role, "operator")) {
    reason = `Applying a plan needs the operator role; your token has ${me.role}.`;
  } else if (!shownDraft) {
    reason = "There is no draft to apply: compute one first.";
  }
  button.disabled = Boolean(reason);
  setText(button, shownDraft ? `Apply draft plan ${shownDraft.id}` : "Apply draft");
  setText($("apply-reason"), reason);
  $("apply-reason").hidden = !reason;
}

/** Wire the draft and apply buttons; `session()` gives `{api, me}`, `changed()` refreshes. */
export function initPlanActions(session, changed, failed) {
  const message = $("plan-message");
  $("draft-button").addEventListener("click", async () => {
    say(message, "Computing a draft…");
    try {
      const detail = await session().api.get("plans/draft");
      drafts.set(detail.plan.id, detail);
      say(message, `Drafted plan ${detail.plan.id}: ${detail.plan.summary}.`, "ok");
      await changed();
    } catch (error) {
      if (!failed(error)) say(message, `Could not draft a plan: ${error.message}`, "error");
    }
  });
  $("apply-button").addEventListener("click", async () => {
    const plan = shownDraft;
    if (!plan || !window.confirm(`Apply draft plan ${plan.id}? ${plan.summary}.`)) return;
    say(message, `Applying plan ${plan.id}…`);
    try {
      const result = await session().api.post("plans", { plan_id: plan.id });
      say(message, `Plan ${plan.id} applied: ${result.message}.`, "ok");
      await changed();
    } catch (error) {
      if (failed(error)) return;
      say(message, `Plan ${plan.id} was not applied: ${error.message}`, "error");
    }
  });
}
