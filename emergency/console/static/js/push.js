// Web Push on this phone: the opt-in strip, registering the browser's subscription with the server,
// and forgetting it at logout. The notifications themselves are shown by the service worker (push-sw.js).

import { ApiError, api, isPartner, session } from "./api.js";
import { h, replace } from "./dom.js";

const strip = () => document.getElementById("push-optin");

export function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
}

// The VAPID public key arrives base64url; the browser wants bytes.
function keyBytes(base64url) {
  const base64 = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((byte, i) => byte === key[i]);
}

async function subscription(registration, key) {
  let existing = await registration.pushManager.getSubscription();
  if (existing && !sameKey(existing, key)) {
    await existing.unsubscribe(); // the server's key changed: this one can no longer be used
    existing = null;
  }
  return existing || registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}

// Subscribe (asking permission first, which browsers allow only after a tap) and tell the server.
export async function turnOn() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error("Notifications are blocked for this site: allow them in the browser's settings.");
  const config = await api("GET", "/push/config");
  if (!config.enabled) throw new Error("This server has no push notifications set up.");
  const registration = await navigator.serviceWorker.ready;
  const sub = await subscription(registration, keyBytes(config.public_key));
  return api("POST", "/me/push-subscriptions", { body: { ...sub.toJSON(), user_agent: navigator.userAgent } });
}

// Log out: this browser stops receiving pushes (the server drops the device with the token too).
export async function forget() {
  if (!supported()) return;
  try {
    const registration = await navigator.serviceWorker.getRegistration("/");
    const sub = registration && (await registration.pushManager.getSubscription());
    if (sub) await sub.unsubscribe();
  } catch {
    // Logging out must never fail on this.
  }
}

function show(...children) {
  const box = strip();
  replace(box, ...children);
  box.hidden = children.length === 0;
}

function offer() {
  const button = h("button", { class: "button button-primary", type: "button", "data-testid": "push-on",
    text: "Turn on notifications" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await turnOn();
      show(h("span", { "data-testid": "push-status", text: "Notifications on: alerts reach this phone even when the app is closed." }));
      setTimeout(() => show(), 4000);
    } catch (err) {
      button.disabled = false;
      show(h("span", { "data-testid": "push-status", text: err instanceof ApiError ? err.message : err.message || String(err) }), button);
    }
  });
  show(h("span", { text: "Get alerts when this app is closed." }), button);
}

// After login and at every start: offer the opt-in, or quietly re-register a subscription the browser
// already has (a new login on this phone takes the device over; the server keeps one row per browser).
export async function refresh() {
  const saved = session.get();
  if (!saved || isPartner(saved.user) || !supported()) return show();
  try {
    const config = await api("GET", "/push/config");
    if (!config.enabled) return show();
    if (Notification.permission === "denied") return show();
    const registration = await navigator.serviceWorker.ready;
    const existing = await registration.pushManager.getSubscription();
    if (Notification.permission === "granted" && existing && sameKey(existing, keyBytes(config.public_key))) {
      await api("POST", "/me/push-subscriptions", { body: { ...existing.toJSON(), user_agent: navigator.userAgent } });
      return show();
    }
    offer();
  } catch {
    show();
  }
}
