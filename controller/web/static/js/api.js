// The controller's JSON API: every call carries the bearer token, errors carry the API's words.

const BASE = new URL("../api/v1/", document.baseURI);

/** An API answer that was not 2xx: `status`, the API's `code` and its readable `detail`. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  const detail =
    typeof body.detail === "string"
      ? body.detail
      : `the controller answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, body.error || `http_${response.status}`, detail);
}

/**
 * A client for `token`: `get(path, params)` and `post(path, body)` resolve to parsed JSON
 * or reject with an ApiError (status 0: the controller could not be reached).
 */
export function apiClient(token) {
  async function call(method, path, { params, body } = {}) {
    const url = new URL(path, BASE);
    for (const [name, value] of Object.entries(params || {})) {
      for (const one of [value].flat()) url.searchParams.append(name, one); // arrays repeat
    }
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "unreachable", "the controller could not be reached");
    }
    if (!response.ok) throw await errorFrom(response);
    return response.status === 204 ? null : response.json();
  }
  return {
    get: (path, params) => call("GET", path, { params }),
    post: (path, body) => call("POST", path, { body }),
    del: (path) => call("DELETE", path),
  };
}

/** Every item of a paginated listing (`{items, total}`), page by page. */
export async function allPages(api, path, params = {}) {
  const limit = 500;
  const items = [];
  for (let offset = 0; ; offset += limit) {
    const page = await api.get(path, { ...params, limit, offset });
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}
