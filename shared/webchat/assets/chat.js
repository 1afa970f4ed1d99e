// The end users' chat page: one key, one conversation, answers streamed from ../v1 (the
// controller's gateway, or one device's own chat API, which may need no key at all).
// Every text from a user or a model goes into the page as textContent, never as HTML.

const KEY_STORE = "edgefleet.chatKey";
const $ = (id) => document.getElementById(id);
const history = [];

function key() {
  return sessionStorage.getItem(KEY_STORE);
}

async function call(path, options = {}) {
  const auth = key() ? { Authorization: `Bearer ${key()}` } : {};
  const headers = { ...auth, ...(options.headers || {}) };
  return fetch(`../v1/${path}`, { ...options, headers });
}

async function reason(response) {
  try {
    const body = await response.json();
    const wait = response.headers.get("Retry-After");
    const text = body.detail ?? body.error?.message ?? body.error;
    return text + (wait ? ` (try again in ${wait} s)` : "");
  } catch {
    return `the gateway answered ${response.status}`;
  }
}

async function signIn(event) {
  event?.preventDefault();
  const typed = $("key").value.trim();
  if (typed) sessionStorage.setItem(KEY_STORE, typed);
  if (event && !key()) return;
  const used = key();
  const response = await call("models");
  if (!response.ok) {
    if (used) {
      $("signin-error").textContent = await reason(response);
      sessionStorage.removeItem(KEY_STORE);
    }
    return;
  }
  const select = $("model");
  select.replaceChildren();
  for (const model of (await response.json()).data) {
    select.append(new Option(model.id === "auto" ? "auto (the fleet's choice)" : model.id, model.id));
  }
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("sign-out").hidden = !key();
  $("question").focus();
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  location.reload();
}

function bubble(role, text) {
  const item = document.createElement("li");
  item.className = `msg ${role}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  const meta = document.createElement("small");
  meta.className = "meta";
  item.append(body, meta);
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return { item, body, meta };
}

function describe(final, device) {
  const served = final.edgefleet || {};
  const parts = [`answered by ${served.device_id ?? device} with ${final.model}`];
  if (served.strategy && served.strategy !== "direct") {
    parts.push(served.refined ? `refined (${served.strategy})` : `not changed by ${served.strategy}`);
  }
  if (served.escalated) parts.push("escalated to a stronger model");
  const continued = served.continued;
  if (continued) parts.push(`continued by ${continued.to_device} after ${continued.from_device} failed`);
  if (served.latency_ms !== undefined) parts.push(`${(served.latency_ms / 1000).toFixed(1)} s`);
  return parts.join(" · ");
}

async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      if (line === "data: [DONE]") return;
      if (line.startsWith("data: ")) yield JSON.parse(line.slice(6));
    }
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  $("send").disabled = true;
  bubble("user", question);
  history.push({ role: "user", content: question });
  const answer = bubble("assistant", "");
  answer.meta.textContent = "waiting for a device…";
  try {
    const response = await call("chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: $("model").value, messages: history, stream: true }),
    });
    if (!response.ok) throw new Error(await reason(response));
    const device = response.headers.get("X-Edgefleet-Device");
    answer.meta.textContent = `answering: ${device}`;
    let final = null;
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) answer.body.textContent += piece;
      if (chunk.edgefleet) final = chunk;
    }
    if (!final) throw new Error("the answer was cut off");
    answer.meta.textContent = describe(final, device);
    history.push({ role: "assistant", content: answer.body.textContent });
  } catch (error) {
    history.pop();
    answer.item.classList.add("failed");
    answer.meta.textContent = `no answer: ${error.message}`;
  } finally {
    $("send").disabled = false;
    $("question").focus();
  }
}

function enterSends(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
}

$("signin").addEventListener("submit", signIn);
$("ask").addEventListener("submit", ask);
$("question").addEventListener("keydown", enterSends);
$("sign-out").addEventListener("click", signOut);
// A device whose chat API needs no key says so on its health check: then none is asked.
async function start() {
  if (key()) return signIn();
  const health = await fetch("../healthz").then((r) => (r.ok ? r.json() : {}), () => ({}));
  if (health.key_required === false) signIn();
}

start();
