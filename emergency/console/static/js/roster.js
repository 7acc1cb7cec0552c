// Student rosters (docs/roster.md): the check-in by student, and the school's unaccounted list.
// The check-in and board screens each mount one of these into a box of their own; a school with no
// roster imported shows nothing here and the count steppers stay the way to report.

import { ApiError, get } from "./api.js";
import { h, replace, time } from "./dom.js";
import * as live from "./live.js";
import * as outbox from "./outbox.js";

// A tap moves an expected student through these; present is where everyone starts.
const CYCLE = ["present", "absent", "missing", "injured"];
const WORDS = { present: "Here", absent: "Absent today", missing: "Missing", injured: "Injured",
  accounted: "Accounted", not_reported: "Not reported" };

async function optionalRoster(path, query) {
  try {
    return await get(path, query);
  } catch (err) {
    if (err instanceof ApiError && [403, 404, 405, 422].includes(err.status)) return null;
    throw err;
  }
}

function studentButton(student, status, onTap, detail = "") {
  const button = h("button", { type: "button", class: `student student-${status}`, "data-testid": "student",
    "data-status": status },
  // The accessible name is the visible text ("Ana Bell: Here"), as axe-core's label-content-name-mismatch asks.
  h("span", { class: "student-name", text: detail ? `${student.name} (${detail})` : student.name }),
  h("span", { class: "visually-hidden", text: ": " }),
  h("span", { class: "student-status", text: WORDS[status] }));
  button.addEventListener("click", onTap);
  return button;
}

// Two students may share a name: a search result also says the grade and where the student is expected.
function searchDetail(student) {
  const where = student.expected_room ? `expected in ${student.expected_room.label}` : "expected room unknown";
  return student.grade ? `grade ${student.grade}, ${where}` : where;
}

// The check-in screen: the room's expected students pre-filled as here; tap the exceptions, add extras.
export async function mountRoomRoster(box, runId, roomId) {
  const roster = await optionalRoster(`/runs/${runId}/roster/room`, { room_id: roomId || undefined });
  if (!roster || (!roster.students.length && !roster.extras.length)) {
    replace(box);
    return false;
  }
  const statuses = new Map(roster.students.map((s) => [s.id, s.status || "present"]));
  const extras = new Map(roster.extras.map((s) => [s.id, { student: s, status: s.status || "present" }]));
  const list = h("div", { class: "student-list" });
  const extrasList = h("div", { class: "student-list" });
  const search = h("input", { type: "search", id: "student-search", "data-testid": "student-search", maxlength: "100",
    placeholder: "Add a student who is with you: type a name" });
  const found = h("div", { class: "student-list", "data-testid": "student-results" });
  const send = h("button", { type: "button", class: "button button-huge button-primary", "data-testid": "send-roster" });

  function draw() {
    replace(list, roster.students.map((s) => studentButton(s, statuses.get(s.id), () => {
      statuses.set(s.id, CYCLE[(CYCLE.indexOf(statuses.get(s.id)) + 1) % CYCLE.length]);
      draw();
    })));
    replace(extrasList, [...extras.values()].map(({ student, status }) => studentButton(student, status, () => {
      if (status === "present") extras.set(student.id, { student, status: "injured" });
      else extras.delete(student.id);
      draw();
    })));
    const missing = [...statuses.values()].filter((s) => s === "missing").length;
    const here = [...statuses.values()].filter((s) => s === "present" || s === "injured").length + extras.size;
    send.textContent = missing ? `Send: ${missing} missing, ${here} here` : `Send: all accounted for, ${here} here`;
    send.className = `button button-huge ${missing ? "button-warn" : "button-good"}`;
  }

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(async () => {
      const q = search.value.trim();
      const result = q.length >= 2 ? await optionalRoster(`/runs/${runId}/roster/students`, { q }) : null;
      replace(found, (result ? result.students : []).filter((s) => !statuses.has(s.id) && !extras.has(s.id))
        .map((s) => studentButton(s, "not_reported", () => {
          extras.set(s.id, { student: s, status: "present" });
          search.value = "";
          replace(found);
          draw();
        }, searchDetail(s))));
    }, 250);
  });

  send.addEventListener("click", () => {
    if (send.disabled) return;
    send.disabled = true;
    setTimeout(() => { send.disabled = false; }, 2000);
    const body = {
      room_id: roster.room.id,
      exceptions: [...statuses].filter(([, s]) => s !== "present").map(([id, s]) => ({ student_id: id, status: s })),
      extras: [...extras.values()].map(({ student, status }) => ({ student_id: student.id, status })),
    };
    // Names stay off the outbox label: it is shown on screen and kept on the phone.
    outbox.enqueue({ runId, kind: "checkin", path: `/runs/${runId}/roster/checkins`, body,
      label: `Class report ${roster.room.label}: ${body.exceptions.length} exceptions, ${body.extras.length} extra` });
  });

  replace(box,
    h("h2", { class: "section-title", text: `Your class in ${roster.room.label}` }),
    h("p", { class: "muted", text: roster.period ? `Period ${roster.period}. Tap a student who is not here.`
      : "Homeroom. Tap a student who is not here." }),
    list, h("h3", { class: "field-title", text: "With you from other rooms" }), extrasList,
    h("label", { for: "student-search", text: "Add a student" }), search, found, send);
  draw();
  return true;
}

// The board: the school's students by status, the unaccounted first, redrawn on every report.
export async function mountSchoolList(box, runId) {
  const counts = h("p", { class: "roster-counts", "data-testid": "roster-counts" });
  const unaccounted = h("div", { class: "student-list", "data-testid": "unaccounted" });
  const flagged = h("div", { class: "student-list", "data-testid": "flagged" });

  async function refresh() {
    const roster = await optionalRoster(`/runs/${runId}/roster`);
    if (!roster || !roster.counts.students) {
      replace(box);
      return;
    }
    const c = roster.counts;
    counts.textContent = `${c.unaccounted} unaccounted (${c.missing} missing, ${c.not_reported} not reported) · `
      + `${c.present} here · ${c.injured} injured · ${c.absent} absent · ${c.flagged} reported by two rooms`;
    const rooms = new Map(roster.rooms.map((r) => [r.id, r.label]));
    const byId = new Map(roster.students.map((s) => [s.id, s]));
    const label = (id, otherwise) => (id ? rooms.get(id) : otherwise);
    replace(unaccounted, roster.unaccounted.map((id) => byId.get(id)).map((s) => h("p", { class: `student student-${s.status}` },
      h("span", { class: "student-name", text: s.name }),
      h("span", { class: "student-status", text: `${WORDS[s.status]} · expected in ${label(s.expected_room_id, "unknown room")}` }))));
    replace(flagged, roster.flagged.map((id) => byId.get(id)).map((s) => h("p", { class: "student student-flagged" },
      h("span", { class: "student-name", text: s.name }),
      h("span", { class: "student-status", text: `${WORDS[s.status]} in ${label(s.room_id, "?")} (${time(s.reported_at)}); `
        + `${label(s.conflict_room_id, "another room")} said ${WORDS[s.conflict_status]}` }))));
    if (!box.firstChild) {
      replace(box, h("h2", { class: "section-title", text: "Students" }), counts,
        h("h3", { class: "field-title", text: "Unaccounted" }), unaccounted,
        h("h3", { class: "field-title", text: "Reported by two rooms (latest shown)" }), flagged);
    }
  }

  await refresh();
  const off = live.subscribe((name, event) => {
    if (event.run_id === runId && (name === "roster.updated" || name === "run.ended")) refresh();
  });
  return off;
}
