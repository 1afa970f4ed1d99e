// The fleet's events on one timeline, newest first: commands with their acks, dead letters
// (rejected MQTT messages) with reasons and counts, plan changes; filtered by kind and device.
// Refreshed by the page's timer; rows are keyed, so a refresh adds rows without flicker.

import { badge, setText, syncRows } from "./dom.js";
import { when } from "./format.js";

const $ = (id) => document.getElementById(id);
const SHOWN = 200;

function filters() {
  return { kind: $("events-kind").value, device: $("events-device").value.trim() };
}

/** Fetch what the filters ask for and render the merged timeline. */
export async function refreshEvents(api) {
  const { kind, device } = filters();
  const byDevice = device ? { device_id: device } : {};
  const want = (k) => kind === "all" || kind === k;
  const [commands, acks, letters, counts, plans] = await Promise.all([
    want("command") ? api.get("commands", { limit: 100, ...byDevice }) : { items: [] },
    want("command") ? api.get("acks", { limit: 300, ...byDevice }) : { items: [] },
    want("dead-letter") ? api.get("dead-letters", { limit: 100, ...byDevice }) : { items: [] },
    api.get("dead-letters/counts"),
    want("plan") && !device ? api.get("plans", { limit: 20 }) : [],
  ]);
  const events = [
    ...commandEvents(commands.items, acks.items),
    ...letters.items.map(deadLetterEvent),
    ...plans.map(planEvent),
  ].sort((a, b) => b.at - a.at).slice(0, SHOWN);
  renderCounts(counts);
  render(events);
}

function commandEvents(commands, acks) {
  const byCommand = new Map();
  for (const ack of acks) byCommand.set(ack.command_id, [...(byCommand.get(ack.command_id) || []), ack]);
  return commands.map((c) => {
    const its = (byCommand.get(c.id) || []).slice().reverse();
    const trail = its.map((a) => `${a.status}${a.reason ? ` (${a.reason})` : ""}`).join(" → ");
    return {
      key: `command:${c.id}`,
      at: Date.parse(c.created_at),
      kind: "command",
      device: c.device_id,
      what: `${c.type} ${c.status}`,
      detail: `${c.id} by ${c.created_by || "the planner"}; acks: ${trail || "none yet"}`,
    };
  });
}

function deadLetterEvent(d) {
  return {
    key: `dead-letter:${d.id}`,
    at: Date.parse(d.received_at),
    kind: "dead letter",
    device: d.device_id,
    what: d.reason,
    detail: `${d.topic}: ${d.detail} (${d.payload_size} bytes)`,
  };
}

function planEvent(p) {
  return {
    key: `plan:${p.id}:${p.status}`,
    at: Date.parse(p.applied_at || p.created_at),
    kind: "plan",
    device: null,
    what: `plan ${p.id} ${p.status}`,
    detail: `${p.summary} (by ${p.created_by || "the planner"})`,
  };
}

function renderCounts(counts) {
  const parts = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  const total = parts.reduce((sum, [, n]) => sum + n, 0);
  setText($("events-counts"), total
    ? `Dead letters since the controller started keeping count: ${total} (` +
      `${parts.map(([reason, n]) => `${reason} ${n}`).join(", ")}).`
    : "No dead letters.");
}

function render(events) {
  syncRows($("events").tBodies[0], events, (e) => ({
    key: e.key,
    cells: [
      { spec: when(new Date(e.at).toISOString()) },
      { spec: () => badge(e.kind, e.kind.replace(" ", "-")) },
      { spec: e.device || "fleet" },
      { spec: e.what, header: true },
      { spec: e.detail },
    ],
  }));
  $("events-empty").hidden = events.length > 0;
}

/** Refresh at once when a filter changes. */
export function initEventFilters(refresh) {
  const again = () => refresh(true, true);
  $("events-kind").addEventListener("change", again);
  $("events-device").addEventListener("change", again);
  $("events-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    again();
  });
}
