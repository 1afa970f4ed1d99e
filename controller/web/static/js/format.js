// Numbers and times as operators read them; a missing value is an en dash, never "NaN".

export const MISSING = "–";

function present(value) {
  return value !== null && value !== undefined && Number.isFinite(Number(value));
}

/** A number with `digits` decimals, or the missing mark. */
export function num(value, digits = 2) {
  return present(value) ? Number(value).toFixed(digits) : MISSING;
}

/** Megabytes as "512 MB" or "1.9 GB". */
export function megabytes(mb) {
  if (!present(mb)) return MISSING;
  const value = Number(mb);
  return value >= 1000 ? `${(value / 1000).toFixed(1)} GB` : `${Math.round(value)} MB`;
}

/** A file size: "412 KB", "11 MB", "1.9 GB". */
export function fileSize(bytes) {
  if (!present(bytes)) return MISSING;
  const value = Number(bytes);
  return value < 1e6 ? `${Math.max(1, Math.round(value / 1e3))} KB` : megabytes(value / 1e6);
}

/** Milliseconds as "850 ms" or "4.2 s". */
export function millis(ms) {
  if (!present(ms)) return MISSING;
  const value = Number(ms);
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

/** Seconds as "4.2 s". */
export function seconds(s) {
  return present(s) ? `${Number(s).toFixed(1)} s` : MISSING;
}

/** A value with its confidence interval: "0.72 [0.68, 0.75]". */
export function withInterval(value, interval, digits = 2) {
  if (!present(value)) return MISSING;
  if (!Array.isArray(interval) || !present(interval[0]) || !present(interval[1])) {
    return num(value, digits);
  }
  return `${num(value, digits)} [${num(interval[0], digits)}, ${num(interval[1], digits)}]`;
}

/** How long ago an ISO time was: "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return MISSING;
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** An ISO time in the viewer's locale, for titles and history. */
export function when(iso) {
  if (!iso) return MISSING;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? MISSING : date.toLocaleString();
}

/** The strategy a row serves or scores (a row from before strategies: by its refine flag). */
export function strategyOf(row) {
  if (row.strategy) return row.strategy;
  if (row.refine === null || row.refine === undefined) return MISSING;
  return row.refine ? "refine:1" : "direct";
}

/** A model and its strategy, as the planner labels options ("m-small", "m-small vote:5"). */
export function optionLabel(row) {
  if (!row.model_id) return MISSING;
  const strategy = strategyOf(row);
  return strategy === "direct" || strategy === MISSING ? row.model_id : `${row.model_id} ${strategy}`;
}
