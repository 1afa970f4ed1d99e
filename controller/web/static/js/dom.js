// DOM helpers that never parse HTML: data reaches the page only as text nodes.

/**
 * Build an element. `props.text` becomes its textContent, `props.className` its class,
 * `props.attrs` plain attributes; children are nodes or strings (turned into text nodes).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  for (const [name, value] of Object.entries(props.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Set an element's text only when it changed, so screen readers and selections stay put. */
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** A cell spec: a string (text) or a function returning the cell's child nodes. */
function fillCell(cell, spec) {
  if (typeof spec === "function") {
    cell.replaceChildren(...[spec()].flat().filter((c) => c !== null && c !== undefined));
  } else {
    cell.textContent = spec === null || spec === undefined ? "" : String(spec);
  }
}

/**
 * Bring a table body in line with `items` without rebuilding unchanged rows (no flicker,
 * focus and text selection survive a refresh).
 *
 * `row(item)` returns `{key, cells, className?}`; `cells` is a list of
 * `{spec, header?, className?}`; a cell whose `header` is true becomes a
 * `<th scope="row">`. A row is looked at again only when its signature (the JSON of
 * `sig`, default the item) changed, and then only its differing cells are replaced.
 */
export function syncRows(tbody, items, row) {
  const head = tbody.parentElement.tHead;
  const labels = head ? [...head.rows[0].cells].map((th) => th.textContent) : [];
  const existing = new Map();
  for (const tr of tbody.rows) existing.set(tr.dataset.key, tr);
  let position = 0;
  for (const item of items) {
    const spec = row(item);
    const signature = JSON.stringify(spec.sig === undefined ? item : spec.sig);
    let tr = existing.get(spec.key);
    existing.delete(spec.key);
    if (!tr) {
      tr = buildRow(spec, signature, labels);
    } else if (tr.dataset.sig !== signature) {
      patchRow(tr, buildRow(spec, signature, labels));
    }
    if (tbody.rows[position] !== tr) tbody.insertBefore(tr, tbody.rows[position] || null);
    position += 1;
  }
  for (const stale of existing.values()) stale.remove();
}

/** Swap only the cells that differ, so the row (and every unchanged cell) stays in place. */
function patchRow(tr, fresh) {
  tr.className = fresh.className;
  tr.dataset.sig = fresh.dataset.sig;
  const cells = [...fresh.cells];
  if (tr.cells.length !== cells.length) {
    tr.replaceChildren(...cells);
    return;
  }
  cells.forEach((cell, i) => {
    if (!tr.cells[i].isEqualNode(cell)) tr.cells[i].replaceWith(cell);
  });
}

function buildRow(spec, signature, labels) {
  const tr = h("tr", { className: spec.className });
  tr.dataset.key = spec.key;
  tr.dataset.sig = signature;
  for (const [i, cell] of spec.cells.entries()) {
    const td = document.createElement(cell.header ? "th" : "td");
    if (cell.header) td.scope = "row";
    if (cell.className) td.className = cell.className;
    if (labels[i]) td.dataset.label = labels[i]; // the column name, for the phone card layout
    fillCell(td, cell.spec);
    tr.append(td);
  }
  return tr;
}

/** Show a message in a live region (empty text hides it). */
export function say(node, text, kind = "") {
  setText(node, text);
  node.hidden = !text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

/** A short status word with its own class, never colour alone: the word is the signal. */
export function badge(word, kind) {
  return h("span", { className: `badge badge-${kind || word}`, text: word });
}
