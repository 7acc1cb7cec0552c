// Live events over Socket.IO. Screens subscribe to events; after a reconnect they are told to
// resynchronise, because events sent while the phone was away are not replayed by the server.

const handlers = new Set();
const resyncers = new Set();
const statusListeners = new Set();
let socket = null;
let everConnected = false;

export function connected() {
  return !!socket && socket.connected;
}

export function connect(token) {
  disconnect();
  if (typeof window.io !== "function") return;
  everConnected = false;
  socket = window.io({ auth: { token }, transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });
  socket.on("connect", () => {
    const again = everConnected;
    everConnected = true;
    statusListeners.forEach((fn) => fn(true));
    if (again) resyncers.forEach((fn) => fn());
  });
  socket.on("disconnect", () => statusListeners.forEach((fn) => fn(false)));
  socket.on("connect_error", () => statusListeners.forEach((fn) => fn(false)));
  // Every run event, including kinds added after this file was written (they all share one envelope).
  socket.onAny((name, data) => handlers.forEach((fn) => fn(name, data || {})));
}

export function disconnect() {
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
  }
  socket = null;
  statusListeners.forEach((fn) => fn(false));
}

// fn(name, event); returns an unsubscribe function.
export function subscribe(fn) {
  handlers.add(fn);
  return () => handlers.delete(fn);
}

export function onResync(fn) {
  resyncers.add(fn);
  return () => resyncers.delete(fn);
}

export function onStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

// Keep a run screen current: timeline entries as they come, a debounced refresh of the rest, a
// resync from the timeline after a reconnect, and polling while the socket is down. Returns a stop function.
export function followRun(runId, timeline, refresh, delay = 150) {
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh().catch(() => {}), delay); };
  const off = subscribe((name, event) => {
    if (event.run_id !== runId) return;
    timeline.live(name, event);
    soon();
  });
  const offResync = onResync(() => { timeline.fill().catch(() => {}); soon(); });
  const poll = setInterval(() => { if (!connected()) { timeline.fill().catch(() => {}); soon(); } }, 15000);
  return () => { off(); offResync(); clearInterval(poll); clearTimeout(timer); };
}
