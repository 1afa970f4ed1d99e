// One device's page: its facts, a day of charts, its benchmark runs, its commands with their
// acks, and (operators only) identify, benchmark and assign.

import { allPages } from "./api.js";
import { timeSeries } from "./chart.js";
import { badge, h, say, setText, syncRows } from "./dom.js";
import { megabytes, millis, MISSING, num, optionLabel, strategyOf, when } from "./format.js";
import { roleAllows } from "./session.js";

const $ = (id) => document.getElementById(id);
const HOUR_MS = 3600 * 1000;
const MAX_POINTS = 500; // per chart: a day in 5-minute buckets, a week in 20-minute ones
const CHARTS = [
  // [container, series field, scale to the unit shown, budget of the class]
  ["chart-decode", "decode_tok_s", 1, null],
  ["chart-latency", "latency_ms_p95", 1 / 1000, (c) => c && budget(c.latency_budget_s, "s")],
  ["chart-memory", "rss_mb", 1, (c) => c && budget(c.memory_budget_mb, "MB")],
  ["chart-temperature", "temperature_c", 1, null],
  ["chart-load", "load_1m", 1, null],
  ["chart-outbox", "outbox_depth", 1, null],
];

let shown = null; // the device id on show, for the action buttons

function budget(value, unit) {
  return { value, label: `budget ${value} ${unit}` };
}

/** Load and draw everything about `deviceId`. */
export async function refreshDevice(api, me, deviceId) {
  shown = deviceId;
  const hours = Number($("device-window").value);
  const until = Date.now();
  const since = until - hours * HOUR_MS;
  const range = {
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
    max_points: Math.min(MAX_POINTS, hours * 12), // 5-minute buckets where the bound allows
  };
  const device = await api.get(`devices/${encodeURIComponent(deviceId)}`);
  const path = `devices/${encodeURIComponent(deviceId)}`;
  const [cls, series, states, bench, commands, acks, models] = await Promise.all([
    device.device_class ? api.get(`classes/${encodeURIComponent(device.device_class)}`) : null,
    Promise.all(CHARTS.map(([, field]) => api.get(`${path}/metrics`, { field, ...range }))),
    api.get(`${path}/states`, { limit: 200, since: range.since }),
    api.get("bench/results", { device_id: deviceId, limit: 50 }),
    api.get("commands", { device_id: deviceId, limit: 50 }),
    api.get("acks", { device_id: deviceId, limit: 200 }),
    roleAllows(me.role, "operator") ? allPages(api, "models") : [],
  ]);
  if (shown !== deviceId) return;
  renderFacts(device, cls);
  renderCharts(series, cls, offlineSpans(states.items, since, until), since, until);
  renderBench(bench.items);
  renderCommands(commands.items, acks.items);
  renderActions(me, device, models);
}

function renderFacts(device, cls) {
  setText($("device-title"), `Device ${device.id}${device.name ? ` (${device.name})` : ""}`);
  const beat = device.last_heartbeat || {};
  const facts = [
    ["Status", device.status || "unknown"],
    ["Class", device.device_class || MISSING],
    ["Budgets", cls ? `${megabytes(cls.memory_budget_mb)}, ${cls.latency_budget_s} s` : MISSING],
    ["Serving", optionLabel(device)],
    ["Strategy", device.model_id ? strategyOf(device) : MISSING],
    ["Last seen", when(device.last_seen_at)],
    ["Hardware", [device.arch, device.cores && `${device.cores} cores`,
      device.ram_total_mb && megabytes(device.ram_total_mb)].filter(Boolean).join(", ") || MISSING],
    ["Free memory", megabytes(beat.mem_available_mb)],
    ["Agent", device.agent_version || MISSING],
  ];
  $("device-facts").replaceChildren(
    ...facts.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })]),
  );
}

/** Offline stretches from the state changes (newest first) inside [since, until]. */
function offlineSpans(states, since, until) {
  const spans = [];
  let end = until;
  for (const state of states) {
    const at = Date.parse(state.sent_at);
    if (state.status === "offline") spans.push({ from: Math.max(at, since), to: end, label: "offline" });
    end = at;
  }
  return spans;
}

function renderCharts(series, cls, spans, since, until) {
  CHARTS.forEach(([id, , factor, budgetOf], i) => {
    const data = series[i];
    const points = data.points.map((p) => ({
      t: Date.parse(p.t), v: p.mean * factor, min: p.min * factor, max: p.max * factor,
    }));
    const label = $(id).previousElementSibling.textContent.trim();
    timeSeries($(id), { label, points, since, until, budget: budgetOf && budgetOf(cls),
      spans: id === "chart-temperature" ? spans : [] });
  });
}

function renderBench(rows) {
  syncRows($("device-bench").tBodies[0], rows, (r) => ({
    key: String(r.id),
    cells: [
      { spec: when(r.measured_at) },
      { spec: r.model_id, header: true },
      { spec: r.category },
      { spec: strategyOf({ strategy: r.strategy, refine: r.refined }) },
      { spec: String(r.n), className: "num" },
      { spec: r.pct_of_reference === null ? MISSING : `${num(r.pct_of_reference, 0)} %`,
        className: "num" },
      { spec: num(r.decode_tok_s, 1), className: "num" },
      { spec: millis(r.e2e_ms_p50), className: "num" },
    ],
  }));
}

function renderCommands(commands, acks) {
  const byCommand = new Map();
  for (const ack of acks) {
    if (!byCommand.has(ack.command_id)) byCommand.set(ack.command_id, []);
    byCommand.get(ack.command_id).push(ack);
  }
  syncRows($("device-commands").tBodies[0], commands, (c) => {
    const its = (byCommand.get(c.id) || []).slice().reverse();
    return {
      key: c.id,
      sig: [c, its],
      cells: [
        { spec: when(c.sent_at || c.created_at) },
        { spec: c.id, header: true, className: "mono" },
        { spec: c.type },
        { spec: () => badge(c.status) },
        { spec: c.created_by || MISSING },
        { spec: its.map((a) => `${a.status}${a.reason ? `: ${a.reason}` : ""}`).join(" → ") ||
          "none yet" },
      ],
    };
  });
}

function renderActions(me, device, models) {
  const allowed = roleAllows(me.role, "operator");
  $("device-actions").hidden = !allowed;
  if (!allowed) return;
  const select = $("device-model");
  const chosen = select.value || device.model_id || "";
  select.replaceChildren(...models.map((m) => h("option", { text: m.id, attrs: { value: m.id } })));
  if (models.some((m) => m.id === chosen)) select.value = chosen;
}

/** Wire the action buttons once; `session()` is the signed-in {api, me}. */
export function initDeviceActions(session, refresh, failedAuth) {
  $("device-window").addEventListener("change", () => refresh(true, true));
  const send = async (command) => {
    const current = session();
    if (!current || !shown) return;
    try {
      const sent = await current.api.post("commands", { device_id: shown, command });
      const ids = sent.commands.map((c) => `${c.type} ${c.id} (${c.status})`).join(", ");
      say($("device-action-message"), `Sent ${ids}.`, "ok");
      refresh(true, true);
    } catch (error) {
      if (!failedAuth(error)) say($("device-action-message"), `Not sent: ${error.message}`, "error");
    }
  };
  $("identify-button").addEventListener("click", () => send({ type: "identify", seconds: 10 }));
  const strategy = () => $("device-strategy").value.trim() || "direct";
  $("bench-button").addEventListener("click", () =>
    send({ type: "bench", model_ids: [$("device-model").value], strategies: [strategy()] }));
  $("assign-button").addEventListener("click", () =>
    send({ type: "assign", model_id: $("device-model").value, strategy: strategy() }));
}
