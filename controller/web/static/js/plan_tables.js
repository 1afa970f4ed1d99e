// Plan tables: the draft's choices with their reasons, a rollout's progress, the history.

import { badge, h, setText, syncRows } from "./dom.js";
import { MISSING, num, optionLabel, when } from "./format.js";

const $ = (id) => document.getElementById(id);

const RUNNER_UP = "runner-up: ";

const ROLLOUT_WORDS = {
  change: "waiting for its wave",
  sent: "sent, waiting for the device",
  ok: "done",
  failed: "failed",
  rolled_back: "rolled back",
};

/** Split an assignment's reasons into the planner's note, the runner-up and the rejections. */
export function splitReasons(reasons) {
  const [note = "", ...rest] = reasons || [];
  const runner = rest.find((r) => typeof r === "string" && r.startsWith(RUNNER_UP));
  return {
    note,
    runnerUp: runner ? runner.slice(RUNNER_UP.length) : null,
    rejected: rest.filter((r) => r !== runner).map(String),
  };
}

function reasonList(items) {
  if (!items.length) return MISSING;
  return h("ul", { className: "reasons" }, items.map((r) => h("li", { text: r })));
}

/** Render a draft's assignments (or clear the table when there is no draft). */
export function renderDraft(detail) {
  const rows = detail ? detail.assignments : [];
  syncRows($("draft").tBodies[0], rows, (a) => {
    const why = splitReasons(a.reasons);
    return {
      key: a.device_id,
      className: `assignment-${a.status}`,
      cells: [
        { spec: a.device_id, header: true },
        { spec: a.device_class || MISSING },
        {
          spec: () => [
            h("span", { className: "model", text: optionLabel(a) }),
            why.note ? h("span", { className: "sub", text: why.note }) : null,
          ],
        },
        { spec: num(a.score, 4), className: "num" },
        { spec: () => badge(a.status) },
        { spec: why.runnerUp || MISSING, className: "model" },
        { spec: () => reasonList(why.rejected), className: "wide" },
      ],
    };
  });
  $("draft-table").hidden = rows.length === 0;
}

function wavePosition(rollout) {
  const waves = rollout.waves || [];
  const shown = Math.min((rollout.wave || 0) + 1, waves.length);
  return `wave ${shown} of ${waves.length}, ${String(rollout.state || "").replace("_", " ")}`;
}

/** Render the newest applied plan's rollout: wave, a progress bar, each device's step. */
export function renderRollout(detail) {
  const rollout = detail ? detail.plan.params.rollout : null;
  const rows = rollout ? detail.assignments.filter((a) => a.status in ROLLOUT_WORDS) : [];
  const done = rows.filter((a) => a.status === "ok").length;
  const progress = $("rollout-progress");
  progress.max = Math.max(rows.length, 1);
  progress.value = done;
  progress.hidden = !rollout;
  setText(
    $("rollout-summary"),
    rollout
      ? `Plan ${detail.plan.id}: ${wavePosition(rollout)}; ${done} of ${rows.length} devices done.`
      : "No plan has been applied yet.",
  );
  syncRows($("rollout").tBodies[0], rows, (a) => ({
    key: a.device_id,
    className: `step-${a.status}`,
    cells: [
      { spec: a.device_id, header: true },
      { spec: optionLabel(a), className: "model" },
      { spec: () => [badge(a.status.replace("_", " "), a.status), " ", ROLLOUT_WORDS[a.status]] },
      { spec: a.command_id || MISSING, className: "mono" },
    ],
  }));
  $("rollout-table").hidden = rows.length === 0;
}

/** Render the plan history, newest first. */
export function renderHistory(plans) {
  syncRows($("history").tBodies[0], plans, (p) => ({
    key: String(p.id),
    className: `plan-${p.status}`,
    cells: [
      { spec: p.id, header: true },
      { spec: () => badge(p.status) },
      { spec: when(p.created_at) },
      { spec: p.created_by || MISSING },
      { spec: when(p.applied_at) },
      { spec: p.summary || MISSING },
      { spec: () => reasonList((p.reasons || []).slice(1).map(String)), className: "wide" },
    ],
  }));
  $("history-table").hidden = plans.length === 0;
  $("history-empty").hidden = plans.length > 0;
}
