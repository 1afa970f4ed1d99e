// Evaluation suites on the registry page: list, and for operators upload and delete.
// A refused file shows the controller's one error per bad line.

import { allPages, ApiError } from "./api.js";
import { h, say, syncRows } from "./dom.js";
import { MISSING } from "./format.js";
import { roleAllows } from "./session.js";

const $ = (id) => document.getElementById(id);

/** Fetch the uploaded suites and render them; the upload form only for operators. */
export async function refreshSuites(api, me) {
  const suites = await allPages(api, "suites");
  const canAct = roleAllows(me.role, "operator");
  $("suite-form").hidden = !canAct;
  $("suites-empty").hidden = suites.length > 0;
  syncRows($("suites").tBodies[0], suites, (s) => ({
    key: s.id,
    sig: [s, canAct],
    cells: [
      { spec: s.id, header: true },
      { spec: s.version },
      { spec: itemCounts(s), className: "num" },
      { spec: s.sha256.slice(0, 16), className: "mono" },
      { spec: s.description || MISSING },
      { spec: s.created_by || MISSING },
      { spec: () => (canAct ? h("button", { text: `Delete suite ${s.id}`,
        attrs: { type: "button", "data-delete-suite": s.id } }) : MISSING) },
    ],
  }));
}

function itemCounts(suite) {
  const parts = Object.entries(suite.counts || {}).map(([type, n]) => `${n} ${type}`);
  return `${suite.n_items} items${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

/** POST the file's bytes as they are: the sha256 devices check is of exactly these bytes. */
async function upload(token, file, suiteId) {
  const url = new URL("../api/v1/suites", document.baseURI);
  url.searchParams.set("suite_id", suiteId);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/jsonl" },
      body: file,
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "unreachable", "the controller could not be reached");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : `the controller answered ${response.status}`;
    throw new ApiError(response.status, body.error || `http_${response.status}`, detail);
  }
  return body;
}

/** Wire upload and delete once; `session()` is the signed-in {api, me, token}. */
export function initSuiteActions(session, refresh, failedAuth) {
  const message = $("suite-message");
  $("suite-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = session();
    const file = $("suite-file").files[0];
    if (!current || !file) return say(message, "Choose a suite file first.", "error");
    const suiteId = $("suite-id").value.trim() || file.name.replace(/\.jsonl?$/i, "");
    $("suite-button").disabled = true;
    try {
      const suite = await upload(current.token, file, suiteId);
      say(message, `Uploaded suite ${suite.id}: ${itemCounts(suite)}, sha256 ${suite.sha256.slice(0, 16)}….`, "ok");
      refresh(true, true);
    } catch (error) {
      if (!failedAuth(error)) say(message, `Suite refused: ${error.message}`, "error");
    } finally {
      $("suite-button").disabled = false;
    }
  });
  $("suites").addEventListener("click", async (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const id = target ? target.getAttribute("data-delete-suite") : null;
    const current = session();
    if (!id || !current || !window.confirm(`Delete suite ${id}? Results measured on it stay.`)) return;
    try {
      await current.api.del(`suites/${encodeURIComponent(id)}`);
      say(message, `Deleted suite ${id}.`, "ok");
      refresh(true, true);
    } catch (error) {
      if (!failedAuth(error)) say(message, `Not deleted: ${error.message}`, "error");
    }
  });
}
