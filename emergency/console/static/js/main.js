// The app: a tiny hash router, the connection indicator, the outbox strip and the service worker.

import { isAdmin, isPartner, logout, NetworkError, session } from "./api.js";
import { announce, h, replace, tick, toast } from "./dom.js";
import * as live from "./live.js";
import * as outbox from "./outbox.js";
import * as push from "./push.js";
import { modeLabel, setRunMode } from "./runui.js";
import * as board from "./screens/board.js";
import * as checkin from "./screens/checkin.js";
import * as compliance from "./screens/compliance.js";
import * as home from "./screens/home.js";
import * as loginScreen from "./screens/login.js";
import * as partner from "./screens/partner.js";
import * as start from "./screens/start.js";

const ROUTES = [
  [/^\/login$/, loginScreen.render, { public: true }],
  [/^\/$/, home.render],
  [/^\/start\/(\d+)$/, start.render],
  [/^\/run\/(\d+)$/, openRun],
  [/^\/run\/(\d+)\/board$/, board.render],
  [/^\/run\/(\d+)\/checkin$/, checkin.render],
  [/^\/run\/(\d+)\/view$/, partner.render],
  [/^\/compliance$/, compliance.render],
];

const screen = document.getElementById("screen");
let cleanup = null;
// A screen that could not load for want of a network opens again by itself when the network returns.
let waitingForNetwork = false;

// A run opens where its reader acts: admins watch the board, partners read, staff check in.
function openRun(main, id) {
  const route = isPartner() ? "view" : isAdmin() ? "board" : "checkin";
  location.replace(`#/run/${id}/${route}`);
}

function route() {
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  waitingForNetwork = false;
  setRunMode(null);
  const path = (location.hash || "#/").slice(1) || "/";
  for (const [pattern, render, options = {}] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    if (!options.public && !session.get()) {
      location.replace("#/login");
      return;
    }
    replace(screen, h("p", { class: "muted", text: "Loading…" }));
    Promise.resolve(render(screen, ...match.slice(1).map(Number)))
      .then((done) => { cleanup = done; })
      .catch((err) => {
        if (err instanceof NetworkError) {
          waitingForNetwork = true;
          replace(screen, h("p", { class: "notice notice-warn", "data-testid": "waiting-for-network",
            text: "No connection, and this phone has not saved this screen yet. It will open by itself when the connection returns." }),
          h("a", { class: "button", href: "#/", text: "Home" }));
          return;
        }
        replace(screen, h("p", { class: "notice notice-error", text: `Could not load this screen: ${err.message}` }),
          h("a", { class: "button", href: "#/", text: "Home" }));
      });
    screen.focus({ preventScroll: true });
    window.scrollTo(0, 0);
    return;
  }
  location.replace("#/");
}

function showNetwork() {
  const net = document.getElementById("net");
  const online = navigator.onLine;
  const liveUp = live.connected();
  net.className = `net ${!online ? "net-offline" : liveUp ? "net-live" : "net-waiting"}`;
  net.dataset.live = String(liveUp);
  net.textContent = !online ? "Offline" : liveUp ? "Live" : session.get() ? "Connecting…" : "";
}

function showOutbox() {
  const box = document.getElementById("outbox");
  const count = outbox.queued().length;
  box.hidden = count === 0;
  box.textContent = count ? `${count} report${count > 1 ? "s" : ""} queued on this phone — will send when the connection returns` : "";
}

function onSession(saved) {
  document.getElementById("logout").hidden = !saved;
  if (saved) live.connect(saved.token);
  else live.disconnect();
  showNetwork();
  push.refresh(); // Web Push (issue 16): offer notifications, or re-register this phone
}

document.getElementById("logout").addEventListener("click", async () => {
  await push.forget(); // Web Push (issue 16): this phone stops getting alerts once logged out
  await logout();
  location.hash = "#/login";
});

session.onChange((saved) => {
  onSession(saved);
  if (!saved && location.hash !== "#/login") {
    toast("Please log in again.");
    location.hash = "#/login";
  }
});
live.onStatus(showNetwork);
live.onStatus((up) => { if (up) outbox.flush(); });
live.onStatus((up) => { if (up && waitingForNetwork) route(); });
window.addEventListener("online", () => { if (waitingForNetwork) route(); });
setInterval(() => { if (waitingForNetwork && navigator.onLine) route(); }, 5000);
// Relative times ("started 9s ago") keep moving on every screen.
setInterval(() => tick(screen), 1000);

// The live region tells screen readers what just arrived, whatever screen is open.
live.subscribe((name, event) => {
  const p = event.payload || {};
  const what = `${p.name || p.action || "Alert"}`;
  if (name === "run.started") announce(`${modeLabel(p.mode || event.mode)}: ${what}. ${p.directive || ""}`);
  else if (name === "run.updated") announce(`Update: ${p.message || ""}`);
  else if (name === "run.action_changed") announce(`Action changed to ${what}. ${p.directive || ""}`);
  else if (name === "run.ended") announce(p.reason === "all_clear" ? "All clear." : "The alert was cancelled.");
});
outbox.onChange(showOutbox);
window.addEventListener("online", showNetwork);
window.addEventListener("offline", showNetwork);
window.addEventListener("hashchange", route);

function boot() {
  onSession(session.get());
  showOutbox();
  outbox.start();
  route();
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }
}

// socket.io.min.js is a classic deferred script: it has run before this module executes.
boot();

