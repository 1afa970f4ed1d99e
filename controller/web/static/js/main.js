// The dashboard's entry: sign in, refresh every panel on a timer, sign out.

import { ApiError } from "./api.js";
import { say, setText } from "./dom.js";
import { refreshFleet } from "./fleet.js";
import { refreshLeaderboard } from "./leaderboard.js";
import { forgetPlans, initPlanActions, refreshPlans } from "./plans.js";
import { forgetToken, signIn, storedToken } from "./session.js";

const REFRESH_MS = 15000;
const SCORES_EVERY = 4; // scores move only when benchmarks arrive: every 4th refresh (1 min)

const $ = (id) => document.getElementById(id);

const PANELS = [
  ["fleet", (s) => refreshFleet(s.api), 1],
  ["leaderboard", (s) => refreshLeaderboard(s.api), SCORES_EVERY],
  ["plans", (s) => refreshPlans(s.api, s.me), 1],
];

let current = null; // {api, me} while signed in
let timer = null;
let running = null;
let ticks = 0; // timed refreshes since the last full one

/** Sign out when the controller stops accepting the token; true when it did. */
function failedAuth(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  signOut(`The controller no longer accepts this token (${error.message}). Sign in again.`);
  return true;
}

function panelMessage(error) {
  if (!error) return "";
  if (!(error instanceof ApiError)) console.error(error); // a bug in this page, not the API
  return `Could not load this section: ${error.message}`;
}

async function refreshPanels(full) {
  const session = current;
  const due = PANELS.filter(([, , every]) => full || ticks % every === 0);
  ticks = full ? 1 : ticks + 1;
  const results = await Promise.allSettled(due.map(([, load]) => load(session)));
  if (session !== current) return;
  const errors = results.map((r) => (r.status === "rejected" ? r.reason : null));
  if (errors.some((e) => e && failedAuth(e))) return;
  due.forEach(([name], i) => say($(`${name}-error`), panelMessage(errors[i]), "error"));
  const time = new Date().toLocaleTimeString();
  const failures = errors.filter(Boolean).length;
  setText($("refreshed"), failures ? `Refreshed at ${time}, with errors.` : `Updated at ${time}.`);
}

/** Refresh the panels (all of them when `full`; one refresh at a time), then reschedule. */
async function refresh(full = true) {
  if (!current) return;
  if (!running) running = refreshPanels(full).finally(() => (running = null));
  await running;
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = current && !document.hidden ? setTimeout(() => refresh(false), REFRESH_MS) : null;
}

function start(session) {
  current = session;
  setText($("who-text"), `Signed in as ${session.me.name} (${session.me.role})`);
  $("signin").hidden = true;
  for (const id of ["app", "who", "nav"]) $(id).hidden = false;
  refresh();
}

function signOut(message = "", kind = "error") {
  current = null;
  clearTimeout(timer);
  forgetToken();
  for (const id of ["app", "who", "nav"]) $(id).hidden = true;
  for (const body of $("app").querySelectorAll("tbody")) body.replaceChildren();
  $("class-boards").replaceChildren();
  forgetPlans();
  $("signin").hidden = false;
  say($("signin-error"), message, kind);
  $("token").focus();
}

function signInMessage(error) {
  if (error instanceof ApiError && error.status === 401) return `Sign-in failed: ${error.message}.`;
  if (error instanceof ApiError && error.status === 0) {
    return "Sign-in failed: the controller could not be reached. Is it running?";
  }
  return `Sign-in failed: ${error.message}`;
}

async function submitToken(event) {
  event.preventDefault();
  const input = $("token");
  const token = input.value.trim();
  if (!token) {
    say($("signin-error"), "Enter an API token.", "error");
    input.focus();
    return;
  }
  const button = $("signin-button");
  button.disabled = true;
  say($("signin-error"), "");
  try {
    const session = await signIn(token);
    input.value = "";
    start(session);
  } catch (error) {
    say($("signin-error"), signInMessage(error), "error");
    input.focus();
  } finally {
    button.disabled = false;
  }
}

function boot() {
  $("signin-form").addEventListener("submit", submitToken);
  $("sign-out").addEventListener("click", () => signOut("Signed out.", "ok"));
  $("refresh-button").addEventListener("click", () => refresh());
  document.addEventListener("visibilitychange", () => (document.hidden ? schedule() : refresh()));
  initPlanActions(() => current, refresh, failedAuth);
  const token = storedToken();
  if (!token) return;
  signIn(token).then(start, (error) => {
    forgetToken();
    say($("signin-error"), signInMessage(error), "error");
  });
}

boot();
