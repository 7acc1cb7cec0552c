// The app shell from cache when the network is flaky. API calls and Socket.IO always go to the
// network: a cached answer about an emergency would be worse than none.
const VERSION = "__SHELL_VERSION__";
const CACHE = `emergency-shell-${VERSION}`;
const SHELL = [
  "/",
  "/console/app.css",
  "/console/icon.svg",
  "/manifest.webmanifest",
  "/console/vendor/socket.io.min.js",
  "/console/js/main.js",
  "/console/js/api.js",
  "/console/js/checklist.js",
  "/console/js/dom.js",
  "/console/js/hold.js",
  "/console/js/hooks.js",
  "/console/js/live.js",
  "/console/js/outbox.js",
  "/console/js/playbooks.js",
  "/console/js/rollup.js",
  "/console/js/roster.js",
  "/console/js/runui.js",
  "/console/js/timeline.js",
  "/console/js/screens/board.js",
  "/console/js/screens/checkin.js",
  "/console/js/screens/compliance.js",
  "/console/js/screens/home.js",
  "/console/js/screens/login.js",
  "/console/js/screens/partner.js",
  "/console/js/screens/start.js",
  // Web Push (issue 16)
  "/console/push-sw.js",
  "/console/js/push.js",
];

// Web Push (issue 16): the push and notificationclick handlers.
importScripts("/console/push-sw.js");

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith("emergency-shell-") && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function isShell(url) {
  return url.origin === self.location.origin && (url.pathname === "/" || url.pathname === "/app" || url.pathname === "/app/"
    || url.pathname.startsWith("/console/") || url.pathname === "/manifest.webmanifest");
}

// Cache first: the shell only changes with a release, and a release changes this file (VERSION),
// which installs a new worker with a fresh cache.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return;
  const key = request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(key);
    if (hit) return hit;
    try {
      const response = await fetch(request);
      if (response.ok) cache.put(key, response.clone());
      return response;
    } catch (err) {
      return (await cache.match("/")) || Response.error();
    }
  })());
});
