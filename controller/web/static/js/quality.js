// Quality against cost: per class, every option's quality (B + I) against its p95 device time,
// with intervals, the latency budget and the plan's choice; and the per-category table laid out
// as the seed paper's Table 3 (% of the reference, a column per strategy, with n).

import { scatter } from "./chart.js";
import { h } from "./dom.js";
import { MISSING, num, optionLabel, strategyOf } from "./format.js";

const $ = (id) => document.getElementById(id);
let lastSummary = null;

/** Fetch scores, classes, the newest plan and the per-category summary; draw both views. */
export async function refreshQuality(api) {
  const [scores, classes, plans, summary] = await Promise.all([
    api.get("scores"),
    api.get("classes"),
    api.get("plans", { limit: 1 }),
    api.get("bench/summary"),
  ]);
  const plan = plans.length ? await api.get(`plans/${plans[0].id}`) : null;
  renderScatters(scores.classes, new Map(classes.map((c) => [c.name, c])), chosenByClass(plan));
  lastSummary = summary;
  renderTable3(summary);
}

/** The option the plan gave most devices of each class: "model|strategy" keys. */
function chosenByClass(plan) {
  const counts = new Map();
  for (const row of plan ? plan.assignments : []) {
    if (!row.model_id || !row.device_class) continue;
    const key = `${row.device_class}\u0000${row.model_id}|${strategyOf(row)}`;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const best = new Map();
  for (const [key, count] of counts) {
    const [cls, option] = key.split("\u0000");
    if (!best.has(cls) || best.get(cls).count < count) best.set(cls, { option, count });
  }
  return new Map([...best].map(([cls, { option }]) => [cls, option]));
}

function point(row, chosen) {
  const quality = row.B + row.I;  // I is 0 for direct
  const interval = row.I_ci ? [row.B + row.I_ci[0], row.B + row.I_ci[1]] : row.B_ci;
  const label = optionLabel(row);
  return {
    x: row.latency_p95_s,
    y: quality,
    low: interval ? interval[0] : undefined,
    high: interval ? interval[1] : undefined,
    label,
    predicted: row.predicted,
    chosen: chosen === `${row.model_id}|${strategyOf(row)}`,
    title: `${label}: quality ${num(quality)} [${num(interval?.[0])}, ${num(interval?.[1])}], ` +
      `p95 ${num(row.latency_p95_s, 1)} s${row.predicted ? " (predicted)" : ""}, ` +
      `Psi ${num(row.psi, 3)}, n ${row.n_questions}`,
  };
}

function renderScatters(byClass, classes, chosen) {
  const figures = Object.entries(byClass).map(([cls, rows]) => {
    const box = h("div", { className: "chart-box" });
    const figure = h("figure", { attrs: { "data-class": cls } },
      h("figcaption", { text: `${cls}: quality against p95 device time` }), box);
    return [figure, box, cls, rows];
  });
  $("quality-charts").replaceChildren(...figures.map(([figure]) => figure));
  for (const [, box, cls, rows] of figures) {
    const info = classes.get(cls);
    scatter(box, {
      label: `${cls}: quality against p95 device time`,
      points: rows.filter((r) => r.latency_p95_s !== null).map((r) => point(r, chosen.get(cls))),
      xLabel: "p95 device time (s)",
      yLabel: "quality (B + I)",
      xBudget: info ? { value: info.latency_budget_s, label: `budget ${info.latency_budget_s} s` } : null,
    });
  }
}

const BUILT_IN = "built-in evaluation set";

/** The suite picker: every suite the summary has, keeping the operator's choice. */
function pickSuite(summary) {
  const select = $("table3-suite");
  const names = [...new Set(summary.map((r) => r.suite || BUILT_IN))].sort();
  const chosen = names.includes(select.value) ? select.value : names[0] || "";
  select.replaceChildren(...names.map((n) => h("option", { text: n, attrs: { value: n } })));
  select.value = chosen;
  return chosen;
}

/** Direct first, then the other strategies by name. */
function strategyOrder(a, b) {
  return (a !== "direct") - (b !== "direct") || a.localeCompare(b);
}

/** Rows: categories; columns: model x each strategy it was measured with; pooled over classes. */
function renderTable3(summary) {
  const suite = pickSuite(summary);
  const cells = new Map();
  const strategies = new Map();  // model -> the strategies it was measured with
  const categories = new Set();
  for (const r of summary) {
    if (r.pct_of_reference === null || (r.suite || BUILT_IN) !== suite) continue;
    if (!strategies.has(r.model_id)) strategies.set(r.model_id, new Set());
    strategies.get(r.model_id).add(r.strategy);
    categories.add(r.category);
    const key = `${r.category}|${r.model_id}|${r.strategy}`;
    const cell = cells.get(key) || { weighted: 0, n: 0 };
    cell.weighted += r.pct_of_reference * r.questions;
    cell.n += r.questions;
    cells.set(key, cell);
  }
  const columns = [...strategies.keys()].sort().map((id) =>
    [id, [...strategies.get(id)].sort(strategyOrder)]);
  const table = $("table3");
  table.tHead.replaceChildren(
    h("tr", {}, h("th", { text: "Category", attrs: { scope: "col", rowspan: 2 } }),
      ...columns.map(([id, names]) =>
        h("th", { text: id, attrs: { scope: "colgroup", colspan: names.length } }))),
    h("tr", {}, ...columns.flatMap(([, names]) => names.map((name) =>
      h("th", { text: name, attrs: { scope: "col" } })))),
  );
  table.tBodies[0].replaceChildren(...[...categories].sort().map((category) =>
    h("tr", {}, h("th", { text: category, attrs: { scope: "row" } }),
      ...columns.flatMap(([id, names]) => names.map((name) => {
        const cell = cells.get(`${category}|${id}|${name}`);
        const text = cell && cell.n ? `${num(cell.weighted / cell.n, 0)} % (n=${cell.n})` : MISSING;
        return h("td", { className: "num", text });
      }))),
  ));
}

/** Redraw the table when another suite is picked (the summary is kept from the last load). */
export function initQualityControls() {
  $("table3-suite").addEventListener("change", () => lastSummary && renderTable3(lastSummary));
}
