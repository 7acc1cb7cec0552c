// The public REST API, with the bearer token kept on the phone between visits.

const SESSION_KEY = "emergency.session";
const SAVED_KEY = "emergency.saved";
const SAVED_MAX = 40;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// The request never reached the server (offline, DNS, connection reset): worth retrying later.
export class NetworkError extends Error {}

export const session = {
  get() {
    try {
      const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
      if (saved && saved.expires_at && new Date(saved.expires_at) <= new Date()) return null;
      return saved;
    } catch {
      return null;
    }
  },
  save(value) {
    localStorage.setItem(SESSION_KEY, JSON.stringify(value));
    listeners.forEach((fn) => fn(value));
  },
  clear() {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(SAVED_KEY);
    listeners.forEach((fn) => fn(null));
  },
  onChange(fn) {
    listeners.add(fn);
  },
};

export function user() {
  const saved = session.get();
  return saved ? saved.user : null;
}

export function isAdmin(u = user()) {
  return !!u && (u.role === "district_admin" || u.role === "school_admin");
}

export function isPartner(u = user()) {
  return !!u && u.kind === "partner";
}

export async function api(method, path, { body, headers = {}, query, raw = false } = {}) {
  const saved = session.get();
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const init = { method, headers: { Accept: raw ? "text/html" : "application/json", ...headers }, cache: "no-store" };
  if (saved) init.headers.Authorization = `Bearer ${saved.token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new NetworkError(err.message || "network error");
  }
  if (raw && response.ok) return response.text();
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (response.status === 401 && saved && !path.startsWith("/auth/login")) session.clear();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, query) => api("GET", path, { query });
export const post = (path, body, headers) => api("POST", path, { body, headers });

export async function login(email, password) {
  const result = await api("POST", "/auth/login", { body: { email, password } });
  session.save({ token: result.token, expires_at: result.expires_at, user: result.user });
  return result.user;
}

export async function logout() {
  try {
    await api("POST", "/auth/logout");
  } catch {
    // The token is forgotten on this phone either way.
  }
  session.clear();
}

// Optional endpoints (being built alongside the console) answer 404 until they exist.
export async function optional(path, query) {
  try {
    return await get(path, query);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

// What a screen needs to open with no network (the run, the school's rooms, the active runs, the
// playbooks, the checklist): the last answer is kept on this phone and used when the network is
// down, so a teacher whose network died can still open the check-in and queue a report.
// Forgotten at logout.
function savedAnswers() {
  try {
    return JSON.parse(localStorage.getItem(SAVED_KEY) || "{}");
  } catch {
    return {};
  }
}

function saveAnswer(key, data) {
  const saved = savedAnswers();
  delete saved[key];
  saved[key] = { at: new Date().toISOString(), data };
  const keys = Object.keys(saved);
  for (const old of keys.slice(0, Math.max(0, keys.length - SAVED_MAX))) delete saved[old];
  try {
    localStorage.setItem(SAVED_KEY, JSON.stringify(saved));
  } catch {
    // A full storage only costs the offline copy, never the answer itself.
  }
}

export async function cachedGet(path, query) {
  const key = `${path}?${new URLSearchParams(query || {})}`;
  try {
    const data = await get(path, query);
    saveAnswer(key, data);
    return data;
  } catch (err) {
    const saved = savedAnswers()[key];
    if (err instanceof NetworkError && saved) return saved.data;
    throw err;
  }
}
