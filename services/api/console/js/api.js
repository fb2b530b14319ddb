// The API client: the bearer token lives in sessionStorage (this tab only, gone when the tab
// closes); any 401 ends the session and sends the user back to the login form with a reason.

export const API = "/api/v1";
const TOKEN_KEY = "wims.token";

let onUnauthorized = () => {};
let expiryTimer = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function tokenExpiry(jwt) {
  // Only to end the session on time in the UI; the server checks the signature.
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function setToken(jwt) {
  sessionStorage.setItem(TOKEN_KEY, jwt);
  scheduleExpiry();
}

export function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const jwt = token();
  const exp = jwt && tokenExpiry(jwt);
  if (!exp) return;
  const left = exp - Date.now();
  if (left <= 0) {
    onUnauthorized("Your session has expired: log in again.");
  } else if (left < 2 ** 31 - 1) {
    expiryTimer = setTimeout(() => onUnauthorized("Your session has expired: log in again."), left);
  }
}

export function clearToken() {
  clearTimeout(expiryTimer);
  sessionStorage.removeItem(TOKEN_KEY);
}

function describe(body, status) {
  // The API's one error body: {"detail", "errors": [{"field", "reason"}]}.
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason)).join("; ");
  }
  if (body && typeof body.detail === "string") return body.detail;
  return `request failed (HTTP ${status})`;
}

export async function request(method, path, { body, form, query } = {}) {
  const headers = { Accept: "application/json" };
  const jwt = token();
  if (jwt) headers.Authorization = `Bearer ${jwt}`;
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let url = API + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== null && v !== undefined && v !== "") q.append(k, v);
    }
    const qs = q.toString();
    if (qs) url += `?${qs}`;
  }
  const r = await fetch(url, { method, headers, body: payload });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (r.status === 401 && jwt && path !== "/auth/token") {
    onUnauthorized(`Logged out: ${describe(data, r.status)}`);
  }
  if (!r.ok) throw new ApiError(r.status, describe(data, r.status));
  return data;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body) => request("POST", path, { body });
export const patch = (path, body) => request("PATCH", path, { body });

export async function login(email, password) {
  const data = await request("POST", "/auth/token", { form: { username: email, password } });
  setToken(data.access_token);
  return data;
}

export async function logout() {
  // POST /auth/logout revokes the token where the API has it; an API without it answers
  // 404, and the token is dropped from this tab either way.
  try {
    if (token()) await request("POST", "/auth/logout");
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
  } finally {
    clearToken();
  }
}
