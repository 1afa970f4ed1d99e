// The signed-in token: in this tab's sessionStorage only (gone when the tab closes).

import { apiClient } from "./api.js";

const KEY = "edgefleet.dashboard.token";

/** The stored token, or null. */
export function storedToken() {
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Forget the token (sign out, or the controller refused it). */
export function forgetToken() {
  try {
    window.sessionStorage.removeItem(KEY);
  } catch {
    // Storage can be disabled; nothing was kept then.
  }
}

/**
 * Check `token` with the controller and keep it: resolves to `{api, me, token}` where `me` is
 * `{name, role}` (the token itself is for the upload, which needs XMLHttpRequest's progress);
 * rejects with the ApiError (401 unknown token, 0 unreachable).
 */
export async function signIn(token) {
  const api = apiClient(token);
  const me = await api.get("me");
  try {
    window.sessionStorage.setItem(KEY, token);
  } catch {
    // Without storage the session lasts until the page reloads.
  }
  return { api, me, token };
}

const RANK = { viewer: 0, operator: 1, admin: 2 };

/** Whether a role may do what `needed` may (viewer < operator < admin). */
export function roleAllows(role, needed) {
  return (RANK[role] ?? -1) >= RANK[needed];
}
