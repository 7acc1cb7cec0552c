// Reading GET /runs/{id}/accountability and GET /runs/{id}/alerts into what the screens draw.

import { get, optional } from "./api.js";

function byNumber(a, b) {
  return String(a.number || a.name).localeCompare(String(b.number || b.name), undefined, { numeric: true });
}

// Every room that must report, and any other place that did: [{id, name, number, status, report}].
export function tiles(rollup) {
  const reported = (rollup.rooms || []).map((report) => ({
    id: report.room_id, name: (report.room && (report.room.label || report.room.name)) || report.location || "Room",
    number: report.room && report.room.number, status: report.status, report,
  }));
  const waiting = (rollup.unreported_rooms || []).map((room) => ({
    id: room.id, name: room.label || room.name, number: room.number, status: "unreported", report: null,
  }));
  return [...reported, ...waiting].sort(byNumber);
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
    return await get(`/schools/${schoolId}/rooms`);
  } catch {
    return [];
  }
}
