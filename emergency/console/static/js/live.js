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
