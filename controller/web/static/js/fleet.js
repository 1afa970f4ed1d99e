// Fleet overview: counts per status, dead letters, and one row per device with its vitals.

import { allPages } from "./api.js";
import { badge, h, setText, syncRows } from "./dom.js";
import { ago, megabytes, millis, MISSING, num, strategyOf, when } from "./format.js";

const $ = (id) => document.getElementById(id);

/** Fetch devices, their newest serving metrics and the dead-letter counts; render them. */
export async function refreshFleet(api) {
  const [devices, serving, deadLetters] = await Promise.all([
    allPages(api, "devices"),
    api.get("serving/latest"),
    api.get("dead-letters/counts"),
  ]);
  const metrics = new Map(serving.map((m) => [m.device_id, m]));
  renderCounts(devices, deadLetters);
  renderDevices(devices, metrics, Date.now());
}

function statusOf(device) {
  return device.status === "online" || device.status === "offline" ? device.status : "unknown";
}

function renderCounts(devices, deadLetters) {
  const counts = { online: 0, offline: 0, unknown: 0 };
  for (const device of devices) counts[statusOf(device)] += 1;
  setText($("count-total"), devices.length);
  for (const [status, count] of Object.entries(counts)) setText($(`count-${status}`), count);
  const reasons = Object.entries(deadLetters).sort(([a], [b]) => a.localeCompare(b));
  const total = reasons.reduce((sum, [, count]) => sum + count, 0);
  setText($("count-dead-letters"), total);
  const byReason = reasons.map(([reason, count]) => `${reason} ${count}`).join(", ");
  setText($("dead-letter-reasons"), total ? `Rejected MQTT messages by reason: ${byReason}` : "");
}

function deviceCell(device) {
  return () => [
    h("a", {
      className: "device-id",
      text: device.id,
      attrs: { href: `#/device/${encodeURIComponent(device.id)}` },
    }),
    device.name ? h("span", { className: "sub", text: device.name }) : null,
  ];
}

function lastSeenCell(device) {
  return () =>
    h("time", { attrs: { datetime: device.last_seen_at, title: when(device.last_seen_at) } });
}

/** "12 s ago" moves on every refresh; update those texts in place, not whole rows. */
function updateAges(tbody, now) {
  for (const time of tbody.querySelectorAll("time")) {
    setText(time, ago(time.getAttribute("datetime"), now));
  }
}

function celsius(value) {
  return value === null || value === undefined ? MISSING : `${num(value, 1)} °C`;
}

function vitals(device) {
  const beat = device.last_heartbeat || {};
  return [
    { spec: num(beat.load_1m, 2), className: "num" },
    { spec: megabytes(beat.mem_available_mb), className: "num" },
    { spec: celsius(beat.temperature_c), className: "num" },
  ];
}

function servingCells(metric) {
  if (!metric) return [{ spec: MISSING, className: "num" }, { spec: MISSING, className: "num" }];
  return [
    { spec: num(metric.decode_tok_s, 1), className: "num" },
    { spec: millis(metric.latency_ms_p95), className: "num" },
  ];
}

function renderDevices(devices, metrics, now) {
  const tbody = $("devices").tBodies[0];
  syncRows(tbody, devices, (device) => {
    const status = statusOf(device);
    const metric = metrics.get(device.id);
    return {
      key: device.id,
      className: `status-${status}`,
      sig: [device, metric],
      cells: [
        { spec: deviceCell(device), header: true },
        { spec: () => badge(status) },
        { spec: lastSeenCell(device) },
        { spec: device.device_class || MISSING },
        { spec: device.model_id || MISSING, className: "model" },
        { spec: device.model_id ? strategyOf(device) : MISSING },
        ...vitals(device),
        ...servingCells(metric),
      ],
    };
  });
  updateAges(tbody, now);
  $("devices-empty").hidden = devices.length > 0;
}
