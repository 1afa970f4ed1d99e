// The model registry: each model's metadata, memory estimate per class, which devices hold
// and serve it; upload with a progress bar and delete, for operators.

import { allPages, ApiError } from "./api.js";
import { h, say, syncRows } from "./dom.js";
import { fileSize, megabytes, MISSING } from "./format.js";
import { roleAllows } from "./session.js";

const $ = (id) => document.getElementById(id);
const details = new Map(); // a model's memory per class changes only with the classes: once

/** Fetch models (and each one's per-class memory once) and the devices; render the table. */
export async function refreshRegistry(api, me) {
  const [models, devices] = await Promise.all([allPages(api, "models"), allPages(api, "devices")]);
  await Promise.all(
    models.filter((m) => !details.has(m.id)).map(async (m) => {
      details.set(m.id, await api.get(`models/${encodeURIComponent(m.id)}`));
    }),
  );
  const canAct = roleAllows(me.role, "operator");
  $("upload-form").hidden = !canAct;
  renderModels(models, devices, canAct);
}

function holders(devices) {
  const held = new Map();
  const served = new Map();
  const add = (map, key, id) => map.set(key, [...(map.get(key) || []), id]);
  for (const d of devices) {
    for (const cached of d.cached_models || []) add(held, cached.model_id, d.id);
    if (d.model_id) add(served, d.model_id, d.id);
  }
  return { held, served };
}

function memoryCell(detail) {
  const fits = Object.entries((detail && detail.memory_by_class) || {});
  if (!fits.length) return MISSING;
  return fits.map(([cls, f]) => `${cls}: ${megabytes(f.estimate_mb)}${f.fits ? "" : " (does not fit)"}`)
    .join("; ");
}

function listCell(ids) {
  return ids && ids.length ? ids.join(", ") : MISSING;
}

function renderModels(models, devices, canAct) {
  const { held, served } = holders(devices);
  syncRows($("models").tBodies[0], models, (m) => ({
    key: m.id,
    sig: [m, held.get(m.id), served.get(m.id), canAct, details.get(m.id)],
    cells: [
      { spec: m.id, header: true },
      { spec: m.architecture || MISSING },
      { spec: m.parameters ? `${(m.parameters / 1e6).toFixed(1)} M` : MISSING, className: "num" },
      { spec: m.quantization || MISSING },
      { spec: fileSize(m.size_bytes), className: "num" },
      { spec: m.sha256.slice(0, 16), className: "mono" },
      { spec: memoryCell(details.get(m.id)) },
      { spec: listCell(held.get(m.id)) },
      { spec: listCell(served.get(m.id)) },
      { spec: () => (canAct ? h("button", { text: `Delete ${m.id}`,
        attrs: { type: "button", "data-delete": m.id } }) : MISSING) },
    ],
  }));
}

/** Upload with progress (XMLHttpRequest: fetch cannot report upload progress). */
function upload(token, file, modelId, onProgress) {
  return new Promise((resolve, reject) => {
    const url = new URL("../api/v1/models/upload", document.baseURI);
    url.searchParams.set("model_id", modelId);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("error", () => reject(new ApiError(0, "unreachable", "the controller could not be reached")));
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = {};
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body.error || `http_${xhr.status}`,
        typeof body.detail === "string" ? body.detail : `the controller answered ${xhr.status}`));
    });
    xhr.send(file);
  });
}

/** Wire upload and delete once; `session()` is the signed-in {api, me, token}. */
export function initRegistryActions(session, refresh, failedAuth) {
  const message = $("registry-message");
  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = session();
    const file = $("upload-file").files[0];
    if (!current || !file) return say(message, "Choose a GGUF file first.", "error");
    const modelId = $("upload-id").value.trim() || file.name.replace(/\.gguf$/i, "");
    const bar = $("upload-progress");
    bar.hidden = false;
    bar.value = 0;
    try {
      const model = await upload(current.token, file, modelId, (share) => (bar.value = share));
      say(message, `Uploaded ${model.id} (sha256 ${model.sha256.slice(0, 16)}…).`, "ok");
      refresh(true, true);
    } catch (error) {
      if (!failedAuth(error)) say(message, `Upload failed: ${error.message}`, "error");
    } finally {
      bar.hidden = true;
    }
  });
  $("models").addEventListener("click", async (event) => {
    const id = event.target instanceof Element ? event.target.getAttribute("data-delete") : null;
    const current = session();
    if (!id || !current || !window.confirm(`Delete model ${id} and its file?`)) return;
    try {
      await current.api.del(`models/${encodeURIComponent(id)}`);
      details.delete(id);
      say(message, `Deleted ${id}.`, "ok");
      refresh(true, true);
    } catch (error) {
      if (!failedAuth(error)) say(message, `Not deleted: ${error.message}`, "error");
    }
  });
}
