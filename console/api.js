// The console's only door to the server: the public API, with the signed-in user's
// token. The tokens live in this module's variables and nowhere else (no storage, no
// cookies, no URLs): a reload signs out.

const TOKEN_PATH = "/authenticate/connect/token";
const REVOKE_PATH = "/authenticate/connect/revocation";
export const API = "/api/security";

let access = null;
let refresh = null;
let refreshTimer = null;
let refreshing = null;

/** Called when the session ends without the user asking (refresh refused). */
let onExpired = () => {};
export function whenExpired(fn) {
  onExpired = fn;
}

/** An answer that is not a success, with the server's message and logId. */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const message =
      (body && (body.message || body.error_description)) ||
      fallback ||
      `The server answered ${status}.`;
    super(message);
    this.status = status;
    this.logId = body && body.logId ? body.logId : null;
    this.data = body && body.data ? body.data : null;
    this.code = body && body.error ? body.error : null;
  }
}

function form(fields) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  return body;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

function keep(tokens) {
  access = tokens.access_token;
  refresh = tokens.refresh_token || refresh;
  clearTimeout(refreshTimer);
  // Refresh a minute before expiry (or at 80% of a short lifetime).
  const seconds = Number(tokens.expires_in) || 3600;
  const lead = Math.min(60, seconds * 0.2);
  refreshTimer = setTimeout(() => {
    refreshNow().catch(() => {});
  }, Math.max(1, seconds - lead) * 1000);
}

function forget() {
  access = null;
  refresh = null;
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

export function signedIn() {
  return access !== null;
}

/** The password grant. Refusals name every reason the server may not tell apart. */
export async function signIn(username, password) {
  const r = await fetch(TOKEN_PATH, {
    method: "POST",
    body: form({ grant_type: "contensis_classic", username, password }),
    credentials: "omit",
  });
  const body = await readBody(r);
  if (!r.ok) {
    if (body && body.error === "invalid_grant") {
      throw new ApiError(
        r.status,
        null,
        "Sign-in refused: the username or password is wrong, or the account is locked, suspended or expired (an administrator can help), or its password must be reset (set a new one below).",
      );
    }
    throw new ApiError(r.status, body);
  }
  keep(body);
}

/** Trades the refresh token for a new pair; on refusal the session ends. */
export function refreshNow() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        if (!refresh) throw new ApiError(401, null, "Not signed in.");
        const r = await fetch(TOKEN_PATH, {
          method: "POST",
          body: form({
            grant_type: "contensis_classic_refresh_token",
            refresh_token: refresh,
          }),
          credentials: "omit",
        });
        const body = await readBody(r);
        if (!r.ok) {
          forget();
          onExpired();
          throw new ApiError(r.status, body, "Your session has ended; sign in again.");
        }
        keep(body);
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/** Revokes the refresh token (and its chain) and forgets both tokens. */
export async function signOut() {
  const token = refresh;
  forget();
  if (token) {
    const r = await fetch(REVOKE_PATH, {
      method: "POST",
      body: form({ token, token_type_hint: "refresh_token" }),
      credentials: "omit",
    });
    if (!r.ok) throw new ApiError(r.status, await readBody(r));
  }
}

/**
 * Calls the API. `path` is under /api/security unless it starts with "/authenticate".
 * Resolves to the parsed body (null when empty); rejects with ApiError.
 */
export async function call(method, path, body, opts = {}) {
  const url = path.startsWith("/authenticate") ? path : API + path;
  const send = async () => {
    const headers = {};
    if (access && !opts.anonymous) headers.Authorization = `Bearer ${access}`;
    const init = { method, headers, credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  };
  let r = await send();
  if (r.status === 401 && access && refresh && !opts.anonymous) {
    await refreshNow();
    r = await send();
  }
  const parsed = method === "HEAD" ? null : await readBody(r);
  if (!r.ok) throw new ApiError(r.status, parsed);
  return parsed;
}

/** Encodes one path segment (names with spaces, `+`, `%`, `/`). */
export function seg(s) {
  return encodeURIComponent(s);
}

/** Builds a query string from the defined, non-empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Every page of a list (at most `limit` items). */
export async function all(path, params = {}, limit = 5000) {
  const items = [];
  for (let page = 0; ; page++) {
    const r = await call("GET", path + qs({ ...params, pageSize: 1000, pageIndex: page }));
    items.push(...r.items);
    if (r.items.length === 0 || items.length >= r.totalCount || items.length >= limit) {
      return { items, totalCount: r.totalCount };
    }
  }
}
