// Plans: the current draft, a viewer's dry run, applying a draft (operators only), the newest
// rollout, the history.

import { say, setText } from "./dom.js";
import { renderDraft, renderHistory, renderRollout } from "./plan_tables.js";
import { roleAllows } from "./session.js";

const $ = (id) => document.getElementById(id);

const drafts = new Map(); // a draft's assignments never change once written: fetch each once
let storedDraft = null; // the stored draft's plan: what Apply applies
let preview = null; // a viewer's dry run on show: kept over refreshes until closed

/** Fetch the history, the draft's detail and the newest rollout's detail; render all three. */
export async function refreshPlans(api, me) {
  const plans = await api.get("plans", { limit: 20 });
  const draft = plans.find((p) => p.status === "draft") || null;
  const applied = plans.find((p) => p.params && p.params.rollout) || null;
  const [draftDetail, rolloutDetail] = await Promise.all([
    draft ? fetchDraft(api, draft.id) : null,
    applied ? api.get(`plans/${applied.id}`) : null,
  ]);
  storedDraft = draftDetail ? draftDetail.plan : null;
  if (!preview) showStoredDraft(draftDetail);
  renderRollout(rolloutDetail);
  renderHistory(plans);
  updateButtons(me);
}

/** Forget what the last session was shown (its dry run, its drafts): on sign-out. */
export function forgetPlans() {
  drafts.clear();
  storedDraft = null;
  preview = null;
  showStoredDraft(null);
}

function showStoredDraft(detail) {
  setText($("draft-title"), "Current draft");
  setText($("draft-summary"), draftSummary(detail ? detail.plan : null));
  renderDraft(detail);
  $("preview-close").hidden = true;
}

function showPreview(detail) {
  const plan = detail.plan;
  const at = new Date(plan.created_at).toLocaleTimeString();
  setText($("draft-title"), "Dry run (not stored)");
  setText(
    $("draft-summary"),
    `Dry run for ${plan.created_by} at ${at}, not stored: ${plan.summary}. ` +
      "No plan was created and nothing can be applied from it.",
  );
  renderDraft(detail);
  $("preview-close").hidden = false;
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

function updateButtons(me) {
  const operator = roleAllows(me.role, "operator");
  setText($("draft-button"), operator ? "Compute a new draft" : "Preview (dry run)");
  $("draft-help").hidden = operator;
  const button = $("apply-button");
  let reason = "";
  if (!operator) {
    reason = `Applying a plan needs the operator role; your token has ${me.role}.`;
  } else if (!storedDraft) {
    reason = "There is no draft to apply: compute one first.";
  }
  button.disabled = Boolean(reason);
  setText(button, storedDraft ? `Apply draft plan ${storedDraft.id}` : "Apply draft");
  setText($("apply-reason"), reason);
  $("apply-reason").hidden = !reason;
}

/** An operator's draft: stored (the older draft superseded), then shown with the rest. */
async function storeDraft(api, message, changed) {
  say(message, "Computing a draft…");
  const detail = await api.post("plans/draft", {});
  drafts.clear();
  drafts.set(detail.plan.id, detail);
  preview = null;
  say(message, `Drafted plan ${detail.plan.id}: ${detail.plan.summary}.`, "ok");
  await changed();
}

/** A viewer's dry run: computed by the controller, stored nowhere, shown until closed. */
async function previewDraft(api, message) {
  say(message, "Computing a dry run…");
  preview = await api.get("plans/draft");
  showPreview(preview);
  say(message, `Dry run done, nothing stored: ${preview.plan.summary}.`, "ok");
}

/** Wire the draft, preview and apply buttons; `session()` gives `{api, me}`. */
export function initPlanActions(session, changed, failed) {
  const message = $("plan-message");
  $("draft-button").addEventListener("click", async () => {
    const { api, me } = session();
    try {
      if (roleAllows(me.role, "operator")) await storeDraft(api, message, changed);
      else await previewDraft(api, message);
    } catch (error) {
      if (!failed(error)) say(message, `Could not compute a plan: ${error.message}`, "error");
    }
  });
  $("preview-close").addEventListener("click", async () => {
    preview = null; // show the cached draft now: a refresh under way may have skipped it
    showStoredDraft(storedDraft ? drafts.get(storedDraft.id) : null);
    say(message, "");
    await changed();
  });
  $("apply-button").addEventListener("click", async () => {
    const plan = storedDraft;
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
