// Reports made on the phone (check-ins, "I am safe", acknowledgements) go through this outbox:
// saved first, then sent. Offline they stay queued on the phone and are sent when the connection
// returns, each with the Idempotency-Key it was given when it was made, so a retry after a lost
// response is never recorded twice.

import { api, ApiError, NetworkError } from "./api.js";
import { newKey } from "./dom.js";

const KEY = "emergency.outbox";
const SENT_KEY = "emergency.sent";
const listeners = new Set();
let flushing = null;

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "[]");
  } catch {
    return [];
  }
}

function store(key, items) {
  localStorage.setItem(key, JSON.stringify(items));
}

function changed() {
  listeners.forEach((fn) => fn());
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function queued(runId) {
  return load(KEY).filter((item) => runId === undefined || item.run_id === runId);
}

// What this phone has sent (and what the server refused), newest first, for the screen.
export function history(runId) {
  return load(SENT_KEY).filter((item) => item.run_id === runId);
}

function remember(item, outcome) {
  const sent = load(SENT_KEY);
  sent.unshift({ ...item, ...outcome });
  store(SENT_KEY, sent.slice(0, 50));
}

// Queue a POST and try to send it at once. Returns the queued item.
export function enqueue({ runId, kind, path, body, label }) {
  const item = { key: newKey(), run_id: runId, kind, path, body, label, queued_at: new Date().toISOString() };
  const items = load(KEY);
  items.push(item);
  store(KEY, items);
  changed();
  flush();
  return item;
}

async function sendOne(item) {
  try {
    const result = await api("POST", item.path, { body: item.body, headers: { "Idempotency-Key": item.key } });
    return { outcome: "sent", result };
  } catch (err) {
    if (err instanceof NetworkError) return { outcome: "retry" };
    if (err instanceof ApiError && (err.status >= 500 || err.status === 408 || err.status === 429 || err.status === 401)) {
      return { outcome: "retry" };
    }
    return { outcome: "refused", message: err.message };
  }
}

// Send everything queued, oldest first; stops at the first item that must wait for the network.
export function flush() {
  if (!flushing) flushing = sendAll().finally(() => { flushing = null; });
  return flushing;
}

async function sendAll() {
  for (const item of load(KEY)) {
    const { outcome, message } = await sendOne(item);
    if (outcome === "retry") return;
    store(KEY, load(KEY).filter((other) => other.key !== item.key));
    remember(item, { outcome, message: message || null, sent_at: new Date().toISOString() });
    changed();
  }
  // Something queued while this pass was sending goes out now, not at the next timer.
  if (load(KEY).length && navigator.onLine) await Promise.resolve().then(sendAll);
}

export function start() {
  window.addEventListener("online", () => flush());
  setInterval(() => {
    if (load(KEY).length) flush();
  }, 5000);
  flush();
}
