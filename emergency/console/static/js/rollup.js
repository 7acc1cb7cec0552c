// Reading GET /runs/{id}/accountability and GET /runs/{id}/alerts into what the screens draw.

import { cachedGet, optional } from "./api.js";
import { ATTENTION } from "./runui.js";

function byNumber(a, b) {
  return String(a.number || a.name).localeCompare(String(b.number || b.name), undefined, { numeric: true });
}

// What a report asks of the principal, worst first (the server says; older servers did not).
function attentionOf(report) {
  if (report.attention) return report.attention;
  if (report.status === "need_help") return "need_help";
  return report.missing ? "missing" : report.injured ? "injured" : "accounted";
}

// Every room that must report, and any other place that did, worst first:
// [{id, name, number, status, attention, report}].
export function tiles(rollup) {
  const reported = (rollup.rooms || []).map((report) => ({
    id: report.room_id, name: (report.room && (report.room.label || report.room.name)) || report.location || "Room",
    number: report.room && report.room.number, status: report.status, attention: attentionOf(report), report,
  }));
  const waiting = (rollup.unreported_rooms || []).map((room) => ({
    id: room.id, name: room.label || room.name, number: room.number, status: "unreported", attention: "unreported",
    report: null,
  }));
  return [...reported, ...waiting].sort((a, b) => ATTENTION[a.attention].rank - ATTENTION[b.attention].rank || byNumber(a, b));
}

export function totals(rollup) {
  return rollup.totals || { present: 0, absent: 0, missing: 0, injured: 0, extra: 0 };
}

export async function loadRollup(runId) {
  return (await optional(`/runs/${runId}/accountability`)) || {};
}

export async function loadAlerts(runId) {
  return (await optional(`/runs/${runId}/alerts`)) || {};
}

export async function loadRooms(schoolId) {
  try {
    return await cachedGet(`/schools/${schoolId}/rooms`);
  } catch {
    return [];
  }
}
