// PeRFICS leaderboard: one table per device class, the weights in force, the memory view.

import { badge, h, syncRows } from "./dom.js";
import { megabytes, MISSING, num, seconds, strategyOf, withInterval } from "./format.js";

const $ = (id) => document.getElementById(id);

const WEIGHTS = [
  ["eta", "η", "scale of the quality term"],
  ["kappa", "κ", "sharpness of the quality exponential"],
  ["alpha", "α", "weight of baseline quality B"],
  ["beta", "β", "weight of the strategy's gain I over direct"],
  ["gamma", "γ", "weight of the inference cost C"],
  ["rho", "ρ", "weight of the operator's merit E"],
  ["delta", "δ", "added to the denominator"],
];

const COLUMNS = [
  "Rank", "Model", "Strategy", "Psi", "B [95% CI]", "I [95% CI]", "E", "C",
  "Memory", "p95 latency", "Items", "Flags",
];

/** Fetch the scores and render the weights, the per-class boards and the memory view. */
export async function refreshLeaderboard(api) {
  const scores = await api.get("scores");
  renderWeights(scores.weights || {});
  renderClasses(scores.classes || {});
  renderHardware(scores.hardware_independent || []);
}

function renderWeights(weights) {
  const list = $("weights");
  const items = WEIGHTS.map(([key, symbol, meaning]) => [
    h("dt", {}, h("abbr", { text: symbol, attrs: { title: meaning } }), ` (${key})`),
    h("dd", { text: num(weights[key], 2) }),
  ]);
  const signature = JSON.stringify(weights);
  if (list.dataset.sig !== signature) {
    list.replaceChildren(...items.flat());
    list.dataset.sig = signature;
  }
}

let boardsMade = 0;

function boardFor(container, name) {
  const existing = [...container.children].find((node) => node.dataset.board === name);
  if (existing) return existing;
  boardsMade += 1;
  const captionId = `board-${boardsMade}-caption`;
  const table = h(
    "table",
    { className: "board" },
    h("caption", { text: `Class ${name}`, attrs: { id: captionId } }),
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { text: c, attrs: { scope: "col" } })))),
    h("tbody"),
  );
  const attrs = { role: "region", tabindex: 0, "aria-labelledby": captionId };
  const wrap = h("div", { className: "table-wrap", attrs }, table);
  wrap.dataset.board = name;
  return wrap;
}

function renderClasses(classes) {
  const container = $("class-boards");
  const names = Object.keys(classes).sort();
  const boards = names.map((name) => {
    const board = boardFor(container, name);
    const ranked = classes[name].map((row, i) => ({ ...row, rank: i + 1 }));
    syncRows(board.querySelector("tbody"), ranked, scoreRow);
    return board;
  });
  boards.forEach((board, i) => {
    const here = container.children[i];
    if (here !== board) container.insertBefore(board, here || null);
  });
  while (container.children.length > boards.length) container.lastElementChild.remove();
  $("scores-empty").hidden = names.length > 0;
}

function flags(row) {
  const out = [];
  if (row.predicted) out.push(badge("predicted"));
  if (row.quality_pooled) out.push(badge("pooled"));
  if (row.B_overlaps_next) out.push(badge("overlaps", "pooled"));
  return out.length ? out : MISSING;
}

function items(row) {
  const suites = (row.suites || []).join(", ");
  return [String(row.n_questions), h("span", { className: "sub", text: suites || "no suite named" })];
}

function memory(row) {
  const how = row.memory_measured ? "measured" : "estimate";
  return [megabytes(row.memory_mb), h("span", { className: "sub", text: how })];
}

function scoreRow(row) {
  const latency = row.predicted ? `≈ ${seconds(row.latency_p95_s)}` : seconds(row.latency_p95_s);
  return {
    key: `${row.model_id}|${strategyOf(row)}`,
    className: row.predicted ? "predicted" : "",
    cells: [
      { spec: row.rank, className: "num" },
      { spec: row.model_id, header: true, className: "model" },
      { spec: strategyOf(row) },
      { spec: num(row.psi, 4), className: "num strong" },
      { spec: withInterval(row.B, row.B_ci), className: "num" },
      { spec: row.refine ? withInterval(row.I, row.I_ci) : num(row.I, 2), className: "num" },
      { spec: num(row.E, 2), className: "num" },
      { spec: num(row.C, 3), className: "num" },
      { spec: () => memory(row), className: "num" },
      { spec: latency, className: "num" },
      { spec: () => items(row), className: "num" },
      { spec: () => flags(row) },
    ],
  };
}

function renderHardware(rows) {
  syncRows($("hardware").tBodies[0], rows, (row) => ({
    key: `${row.model_id}|${strategyOf(row)}`,
    cells: [
      { spec: row.model_id, header: true, className: "model" },
      { spec: strategyOf(row) },
      { spec: num(row.B, 2), className: "num" },
      { spec: num(row.I, 2), className: "num" },
      { spec: row.memory_gb === null ? MISSING : `${num(row.memory_gb, 2)} GB`, className: "num" },
      { spec: num(row.psi_memory, 4), className: "num strong" },
    ],
  }));
}
