// The dashboard's entry: sign in, route between views (#/device/ID, #/quality, #/registry,
// #/events; anything else is the overview), refresh the view's panels on a timer, sign out.

import { ApiError } from "./api.js";
import { initDeviceActions, refreshDevice } from "./device.js";
import { say, setText } from "./dom.js";
import { initEventFilters, refreshEvents } from "./events.js";
import { initFleetControls, refreshFleet } from "./fleet.js";
import { refreshLeaderboard } from "./leaderboard.js";
import { forgetPlans, initPlanActions, refreshPlans } from "./plans.js";
import { initQualityControls, refreshQuality } from "./quality.js";
import { initRegistryActions, refreshRegistry } from "./registry.js";
import { forgetToken, signIn, storedToken } from "./session.js";

const REFRESH_MS = 15000;
const SCORES_EVERY = 4; // scores move only when benchmarks arrive: every 4th refresh (1 min)

const $ = (id) => document.getElementById(id);

// Per view: [panel (its error line is #PANEL-error), load(session, argument), every Nth tick]
const VIEWS = {
  overview: [
    ["fleet", (s) => refreshFleet(s.api), 1],
    ["leaderboard", (s) => refreshLeaderboard(s.api), SCORES_EVERY],
    ["plans", (s) => refreshPlans(s.api, s.me), 1],
  ],
  device: [["device", (s, id) => refreshDevice(s.api, s.me, id), 1]],
  quality: [["quality", (s) => refreshQuality(s.api), SCORES_EVERY]],
  registry: [["registry", (s) => refreshRegistry(s.api, s.me), 1]],
  events: [["events", (s) => refreshEvents(s.api), 1]],
};

/** The view the address names: {view, arg}. */
function route() {
  const device = window.location.hash.match(/^#\/device\/(.+)$/);
  if (device) return { view: "device", arg: decodeURIComponent(device[1]) };
  const view = window.location.hash.slice(2);
  return { view: window.location.hash.startsWith("#/") && VIEWS[view] ? view : "overview" };
}

function showView() {
  const { view } = route();
  for (const name of Object.keys(VIEWS)) $(`view-${name}`).hidden = name !== view;
}

let current = null; // {api, me} while signed in
let timer = null;
let running = null;
let runningFor = null; // the address the running refresh is for
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
  const { view, arg } = route();
  const due = VIEWS[view].filter(([, , every]) => full || ticks % every === 0);
  ticks = full ? 1 : ticks + 1;
  const results = await Promise.allSettled(due.map(([, load]) => load(session, arg)));
  if (session !== current) return;
  const errors = results.map((r) => (r.status === "rejected" ? r.reason : null));
  if (errors.some((e) => e && failedAuth(e))) return;
  due.forEach(([name], i) => say($(`${name}-error`), panelMessage(errors[i]), "error"));
  const time = new Date().toLocaleTimeString();
  const failures = errors.filter(Boolean).length;
  setText($("refreshed"), failures ? `Refreshed at ${time}, with errors.` : `Updated at ${time}.`);
}

/**
 * Refresh the panels (all of them when `full`; one refresh at a time), then reschedule.
 * `changed`: the caller changed what to show (a filter), so a running refresh is stale.
 */
async function refresh(full = true, changed = false) {
  if (!current) return;
  const address = window.location.hash;
  if (running && (changed || runningFor !== address)) await running; // stale: then ours
  if (!running) {
    runningFor = address;
    running = refreshPanels(full).finally(() => (running = null));
  }
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
  showView();
  refresh();
}

function signOut(message = "", kind = "error") {
  current = null;
  clearTimeout(timer);
  forgetToken();
  for (const id of ["app", "who", "nav"]) $(id).hidden = true;
  for (const body of $("app").querySelectorAll("tbody")) body.replaceChildren();
  $("class-boards").replaceChildren();
  $("quality-charts").replaceChildren();
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
  initDeviceActions(() => current, refresh, failedAuth);
  initRegistryActions(() => current, refresh, failedAuth);
  initEventFilters(refresh);
  initFleetControls(refresh);
  initQualityControls();
  window.addEventListener("hashchange", () => {
    showView();
    if (window.location.hash.startsWith("#/")) $("main").focus();
    refresh();
  });
  const token = storedToken();
  if (!token) return;
  signIn(token).then(start, (error) => {
    forgetToken();
    say($("signin-error"), signInMessage(error), "error");
  });
}

boot();
