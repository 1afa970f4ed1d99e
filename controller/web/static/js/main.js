// The dashboard's entry: sign in, refresh every panel on a timer, sign out.

import { ApiError } from "./api.js";
import { say, setText } from "./dom.js";
import { refreshFleet } from "./fleet.js";
import { refreshLeaderboard } from "./leaderboard.js";
import { initPlanActions, refreshPlans } from "./plans.js";
import { forgetToken, signIn, storedToken } from "./session.js";

const REFRESH_MS = 15000;

const $ = (id) => document.getElementById(id);

const PANELS = [
  ["fleet", (s) => refreshFleet(s.api)],
  ["leaderboard", (s) => refreshLeaderboard(s.api)],
  ["plans", (s) => refreshPlans(s.api, s.me)],
];

let current = null; // {api, me} while signed in
let timer = null;
let running = null;

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

async function refreshAll() {
  const session = current;
  const results = await Promise.allSettled(PANELS.map(([, load]) => load(session)));
  if (session !== current) return;
  const errors = results.map((r) => (r.status === "rejected" ? r.reason : null));
  if (errors.some((e) => e && failedAuth(e))) return;
  PANELS.forEach(([name], i) => say($(`${name}-error`), panelMessage(errors[i]), "error"));
  const time = new Date().toLocaleTimeString();
  const failures = errors.filter(Boolean).length;
  setText($("refreshed"), failures ? `Refreshed at ${time}, with errors.` : `Updated at ${time}.`);
}

/** Refresh every panel now (one refresh at a time), then schedule the next one. */
async function refresh() {
  if (!current) return;
  if (!running) running = refreshAll().finally(() => (running = null));
  await running;
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = current && !document.hidden ? setTimeout(refresh, REFRESH_MS) : null;
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
