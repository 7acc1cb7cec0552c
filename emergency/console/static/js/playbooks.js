// The playbooks the caller may start, from GET /api/v1/playbooks (each with can_start {drill, real}).

import { cachedGet } from "./api.js";

let cached = null;

export async function loadPlaybooks() {
  if (cached) return cached;
  // Partners may not read playbooks (403); nobody without them can start anything.
  const result = await cachedGet("/playbooks").catch(() => null);
  const list = Array.isArray(result) ? result : (result && (result.playbooks || result.items)) || [];
  cached = list;
  return list;
}

export function canStartAny(playbooks) {
  return playbooks.some((p) => p.can_start && (p.can_start.drill || p.can_start.real));
}

export function forgetPlaybooks() {
  cached = null;
}
