// Places where other features add to a screen without editing it: a module calls
// `extend("checkin", fn)` once, and the screen calls every fn with what it knows when it draws.
// Screens and their contexts:
//   "checkin": { run, section, room(), counts, setCount(name, value), onRoomChange(fn) }
//   "board":   { run, section, rollup() }

const extensions = new Map();

export function extend(screen, fn) {
  if (!extensions.has(screen)) extensions.set(screen, []);
  extensions.get(screen).push(fn);
}

export function runExtensions(screen, context) {
  const cleanups = [];
  for (const fn of extensions.get(screen) || []) {
    try {
      const cleanup = fn(context);
      if (typeof cleanup === "function") cleanups.push(cleanup);
    } catch (err) {
      console.error(`extension of ${screen} failed`, err);
    }
  }
  return () => cleanups.forEach((fn) => fn());
}
