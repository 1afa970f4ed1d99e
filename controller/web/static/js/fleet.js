// Fleet overview: counts per status, dead letters, and one page of devices with their vitals,
// filtered and paged on the server (a fleet of thousands would otherwise be fetched whole).

import { badge, h, setText, syncRows } from "./dom.js";
import { ago, megabytes, millis, MISSING, num, strategyOf, when } from "./format.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100; // the API's serving/latest takes up to 100 device ids
let offset = 0;

function filters() {
  const q = $("fleet-search").value.trim();
  const status = $("fleet-status").value;
  return { ...(q ? { q } : {}), ...(status ? { status } : {}) };
}

/** A listing's total only: the count for one status (or all), without its rows. */
async function total(api, params = {}) {
  return (await api.get("devices", { ...params, limit: 1 })).total;
}

/** Fetch the counts, the page of devices the filters ask for and their newest serving
 * metrics; render them. */
export async function refreshFleet(api) {
  const [page, all, online, offline, deadLetters] = await Promise.all([
    api.get("devices", { ...filters(), limit: PAGE, offset }),
    total(api),
    total(api, { status: "online" }),
    total(api, { status: "offline" }),
    api.get("dead-letters/counts"),
  ]);
  if (page.items.length === 0 && offset > 0 && page.total > 0) {
    offset = Math.floor((page.total - 1) / PAGE) * PAGE; // the fleet shrank under this page
    return refreshFleet(api);
  }
  const ids = page.items.map((d) => d.id);
  const serving = ids.length ? await api.get("serving/latest", { device_id: ids }) : [];
  const metrics = new Map(serving.map((m) => [m.device_id, m]));
  renderCounts({ all, online, offline }, deadLetters);
  renderDevices(page.items, metrics, Date.now());
  renderPager(page);
}

/** Filters and paging refresh at once; a new filter starts at the first page. */
export function initFleetControls(refresh) {
  const again = () => refresh(true, true);
  const fromStart = () => {
    offset = 0;
    again();
  };
  let typing = null;
  $("fleet-status").addEventListener("change", fromStart);
  $("fleet-search").addEventListener("input", () => {
    clearTimeout(typing); // one refresh when typing pauses, not one per key
    typing = setTimeout(fromStart, 300);
  });
  $("fleet-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    fromStart();
  });
  $("fleet-previous").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    again();
  });
  $("fleet-next").addEventListener("click", () => {
    offset += PAGE;
    again();
  });
}

function statusOf(device) {
  return device.status === "online" || device.status === "offline" ? device.status : "unknown";
}

function renderCounts({ all, online, offline }, deadLetters) {
  setText($("count-total"), all);
  setText($("count-online"), online);
  setText($("count-offline"), offline);
  setText($("count-unknown"), all - online - offline);
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
  const empty = $("devices-empty");
  const filtered = Object.keys(filters()).length > 0;
  setText(empty, filtered ? "No device matches these filters." : "No device has reported yet.");
  empty.hidden = devices.length > 0;
}

function renderPager(page) {
  const last = page.offset + page.items.length;
  const range = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "none";
  setText($("fleet-range"), `Devices ${range}`);
  $("fleet-previous").disabled = page.offset === 0;
  $("fleet-next").disabled = last >= page.total;
}
