// Small SVG charts drawn from data with DOM calls only (no library, no HTML parsing, no inline
// style, so the page's strict policy holds): a time series with an optional budget line and
// spans, and a scatter with interval bars. Every data point is an SVG <circle class="point">.

const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 180;
const PAD = { left: 52, right: 12, top: 12, bottom: 28 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = String(text);
  return node;
}

/** A linear scale from [d0, d1] to [r0, r1]; a flat domain is widened so it still draws. */
function scale(d0, d1, r0, r1) {
  const lo = d0 === d1 ? d0 - 1 : d0;
  const hi = d0 === d1 ? d1 + 1 : d1;
  const f = (v) => r0 + ((v - lo) / (hi - lo)) * (r1 - r0);
  f.domain = [lo, hi];
  f.range = Math.max(r0, r1);
  return f;
}

/** About five round tick values covering [lo, hi]. */
function ticks(lo, hi, count = 5) {
  const step0 = (hi - lo) / count || 1;
  const power = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= step0);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1e6; v += step) out.push(v);
  return out;
}

function shortNumber(v) {
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(a >= 10000 ? 0 : 1)}k`;
  if (a >= 10 || v === 0) return v.toFixed(0);
  return v.toFixed(a >= 1 ? 1 : 2);
}

function frame(container, label) {
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${HEIGHT}`,
    width,
    height: HEIGHT,
    role: "img",
    "aria-label": label,
    class: "chart",
  });
  root.append(svg("title", {}, label));
  container.replaceChildren(root);
  return { root, width };
}

function yAxis(root, y, width, format) {
  const g = svg("g", { class: "axis" });
  for (const v of ticks(...y.domain)) {
    const py = y(v);
    g.append(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: py, y2: py, class: "grid" }));
    g.append(svg("text", { x: PAD.left - 6, y: py + 4, "text-anchor": "end" }, format(v)));
  }
  root.append(g);
}

function timeAxis(root, x, since, until) {
  const g = svg("g", { class: "axis" });
  const span = until - since;
  for (let i = 0; i <= 4; i += 1) {
    const t = since + (span * i) / 4;
    const label = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    g.append(svg("text", { x: x(t), y: HEIGHT - 8, "text-anchor": "middle" }, label));
  }
  root.append(g);
}

function budgetLine(root, y, width, budget) {
  const py = y(budget.value);
  root.append(
    svg("line", { x1: PAD.left, x2: width - PAD.right, y1: py, y2: py, class: "budget" }),
    svg("text", { x: width - PAD.right, y: py - 4, "text-anchor": "end", class: "budget-label" },
      budget.label),
  );
}

/**
 * A time series: `points` are `{t: ms, v, min, max}`; `budget` `{value, label}` draws a
 * dashed line; `spans` `[{from, to, label}]` shade stretches (offline). Empty data says so.
 */
export function timeSeries(container, { label, points, since, until, budget, spans, format }) {
  const fmt = format || shortNumber;
  if (!points.length) {
    container.replaceChildren(document.createTextNode(`${label}: no samples in this window.`));
    return;
  }
  const { root, width } = frame(container, describe(label, points, fmt));
  const values = points.flatMap((p) => [p.min ?? p.v, p.max ?? p.v]);
  if (budget) values.push(budget.value);
  const y = scale(Math.min(0, ...values), Math.max(...values) * 1.05, HEIGHT - PAD.bottom, PAD.top);
  const x = scale(since, until, PAD.left, width - PAD.right);
  for (const span of spans || []) {
    const x0 = x(Math.max(span.from, since));
    const x1 = x(Math.min(span.to, until));
    const rect = svg("rect", { x: x0, y: PAD.top, width: Math.max(1, x1 - x0),
      height: HEIGHT - PAD.top - PAD.bottom, class: "span" });
    rect.append(svg("title", {}, span.label));
    root.append(rect);
  }
  yAxis(root, y, width, fmt);
  timeAxis(root, x, since, until);
  if (budget) budgetLine(root, y, width, budget);
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  root.append(svg("path", { d: path.join(" "), class: "line" }));
  for (const p of points) {
    const dot = svg("circle", { cx: x(p.t), cy: y(p.v), r: 3, class: "point" });
    dot.append(svg("title", {}, `${new Date(p.t).toLocaleString()}: ${fmt(p.v)}`));
    root.append(dot);
  }
}

function describe(label, points, fmt) {
  const values = points.map((p) => p.v);
  const last = values[values.length - 1];
  return `${label}: ${points.length} points, latest ${fmt(last)}, ` +
    `range ${fmt(Math.min(...values))} to ${fmt(Math.max(...values))}`;
}

/**
 * A scatter: `points` are `{x, y, low, high, label, predicted, chosen}`; `low`/`high` draw a
 * vertical interval bar; predicted points are hollow squares, measured ones filled circles;
 * the chosen one gets a ring. `xBudget` `{value, label}` draws a vertical dashed line.
 */
export function scatter(container, { label, points, xLabel, yLabel, xBudget }) {
  if (!points.length) {
    container.replaceChildren(document.createTextNode(`${label}: nothing scored yet.`));
    return;
  }
  const { root, width } = frame(container, `${label}: ${points.length} options`);
  const xs = points.map((p) => p.x).concat(xBudget ? [xBudget.value] : []);
  const ys = points.flatMap((p) => [p.low ?? p.y, p.high ?? p.y]);
  const x = scale(0, Math.max(...xs) * 1.1, PAD.left, width - PAD.right);
  const y = scale(Math.min(0, ...ys), Math.max(1, ...ys), HEIGHT - PAD.bottom, PAD.top);
  yAxis(root, y, width, shortNumber);
  const g = svg("g", { class: "axis" });
  for (const v of ticks(...x.domain)) {
    g.append(svg("text", { x: x(v), y: HEIGHT - 14, "text-anchor": "middle" }, shortNumber(v)));
  }
  g.append(svg("text", { x: width - PAD.right, y: HEIGHT - 1, "text-anchor": "end" }, xLabel));
  g.append(svg("text", { x: 4, y: PAD.top - 2 }, yLabel));
  root.append(g);
  if (xBudget) {
    const px = x(xBudget.value);
    root.append(
      svg("line", { x1: px, x2: px, y1: PAD.top, y2: HEIGHT - PAD.bottom, class: "budget" }),
      svg("text", { x: px - 4, y: PAD.top + 10, "text-anchor": "end", class: "budget-label" },
        xBudget.label),
    );
  }
  for (const p of points) root.append(scatterPoint(p, x, y));
}

function scatterPoint(p, x, y) {
  const g = svg("g", { class: `option${p.predicted ? " predicted" : ""}${p.chosen ? " chosen" : ""}` });
  const px = x(p.x);
  if (p.low !== undefined && p.high !== undefined) {
    g.append(svg("line", { x1: px, x2: px, y1: y(p.low), y2: y(p.high), class: "interval" }));
  }
  const py = y(p.y);
  const mark = p.predicted
    ? svg("rect", { x: px - 4, y: py - 4, width: 8, height: 8, class: "point predicted" })
    : svg("circle", { cx: px, cy: py, r: 4, class: "point" });
  mark.append(svg("title", {}, p.title || p.label));
  g.append(mark);
  if (p.chosen) g.append(svg("circle", { cx: px, cy: py, r: 9, class: "chosen-ring" }));
  const right = px > x.range * 0.7; // label on the left near the right edge, so it stays in
  g.append(svg("text", { x: right ? px - 7 : px + 7, y: py - 6, "text-anchor": right ? "end" : "start",
    class: "point-label" }, p.label));
  return g;
}
