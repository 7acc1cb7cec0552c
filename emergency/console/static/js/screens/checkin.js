// A teacher reports the class in seconds: "present" starts at the room's expected count and can be
// typed; a missing student takes one tap and a name; a report of nobody is only ever sent when the
// teacher says the room is empty. Works with no network: the screen opens from what the phone
// saved, and the report waits in the outbox.

import { cachedGet, get, user } from "../api.js";
import { h, replace, time } from "../dom.js";
import { checklistPanel } from "../checklist.js";
import { runExtensions } from "../hooks.js";
import * as live from "../live.js";
import * as outbox from "../outbox.js";
import { loadPlaybooks } from "../playbooks.js";
import { loadRooms } from "../rollup.js";
import { mountRoomRoster } from "../roster.js";
import { runHeader, setRunMode, statusWord } from "../runui.js";

const COUNTS = [
  ["present", "Present", "Students you can see"],
  ["missing", "Missing", "Should be with you, not here"],
  ["injured", "Injured", "Also counted in present"],
  ["extra", "Extra", "From other rooms, also in present"],
  ["absent", "Absent today", "Not in school"],
];
const MAX = 999;

// A number you can type, with − and + beside it (a long press repeats).
function counter(name, label, hint, onInput) {
  const input = h("input", { id: `count-${name}`, class: "stepper-value", "data-testid": `count-${name}`, type: "number",
    inputmode: "numeric", min: "0", max: String(MAX), step: "1", value: "0", "aria-describedby": hint ? `hint-${name}` : null });
  const minus = h("button", { type: "button", class: "stepper-button", "aria-label": `${label}: one less`, text: "−",
    "data-testid": `minus-${name}` });
  const plus = h("button", { type: "button", class: "stepper-button", "aria-label": `${label}: one more`, text: "+",
    "data-testid": `plus-${name}` });
  const read = () => Math.max(0, Math.min(MAX, parseInt(input.value, 10) || 0));
  const step = (by) => { input.value = String(Math.max(0, Math.min(MAX, read() + by))); onInput(read(), true); };
  minus.addEventListener("click", () => step(-1));
  plus.addEventListener("click", () => step(1));
  input.addEventListener("focus", () => input.select());
  input.addEventListener("input", () => onInput(read(), true));
  input.addEventListener("blur", () => { input.value = String(read()); });
  for (const [button, by] of [[minus, -1], [plus, 1]]) {
    let repeat = null;
    const stop = () => { clearInterval(repeat); clearTimeout(repeat); repeat = null; };
    button.addEventListener("pointerdown", () => {
      repeat = setTimeout(() => { repeat = setInterval(() => step(by), 90); }, 450);
    });
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(type, stop);
  }
  const row = h("div", { class: `stepper stepper-${name}` },
    h("div", { class: "stepper-label" }, h("label", { for: `count-${name}`, text: label }),
      hint ? h("small", { id: `hint-${name}`, text: hint }) : null),
    minus, input, plus);
  return { row, input, read, set(value) { input.value = String(value); }, disable(off) { for (const n of [input, minus, plus]) n.disabled = off; } };
}

const ACK_KEY = "emergency.acked";

function acked(runId) {
  try {
    return JSON.parse(localStorage.getItem(ACK_KEY) || "[]").includes(runId);
  } catch {
    return false;
  }
}

function markAcked(runId) {
  const list = JSON.parse(localStorage.getItem(ACK_KEY) || "[]").filter((id) => id !== runId);
  list.unshift(runId);
  localStorage.setItem(ACK_KEY, JSON.stringify(list.slice(0, 50)));
}

export async function render(main, runId) {
  const me = user();
  let run = await cachedGet(`/runs/${runId}`);
  setRunMode(run.mode, run);
  const [rooms, playbooks] = await Promise.all([loadRooms(run.school_id), loadPlaybooks()]);
  // The run's own playbook snapshot first: an edited playbook never changes a running drill.
  const playbook = playbooks.find((p) => p.key === run.playbook.key) || {};
  const assemblyPoints = (run.playbook.accountability || {}).assembly_points
    || (playbook.accountability || {}).assembly_points || [];
  const counts = { present: 0, missing: 0, injured: 0, extra: 0, absent: 0 };
  // "present" follows the room's expected count until the teacher changes it by hand.
  let presentByHand = false;
  let needHelp = false;
  const roomListeners = new Set();

  const header = h("div", {}, runHeader(run));
  const ack = h("button", { type: "button", class: "button button-primary button-huge", "data-testid": "acknowledge" });
  function drawAck() {
    // The server's word (run.me) covers the caller's other phones; the local mark covers a queued ack.
    const done = Boolean(run.me && run.me.acknowledged_at) || acked(runId)
      || outbox.queued(runId).some((i) => i.kind === "ack");
    ack.textContent = done ? "Alert acknowledged ✓" : "Acknowledge alert";
    ack.classList.toggle("button-done", done);
    ack.disabled = done;
  }
  ack.addEventListener("click", () => {
    markAcked(runId);
    outbox.enqueue({ runId, kind: "ack", path: `/runs/${runId}/ack`, body: {}, label: "Acknowledgement" });
    drawAck();
  });

  const safe = h("button", { type: "button", class: "button button-good button-big", "data-testid": "i-am-safe", text: "I am safe" });
  const help = h("button", { type: "button", class: "button button-danger button-big", "data-testid": "i-need-help", text: "I need help" });
  safe.addEventListener("click", () => outbox.enqueue({ runId, kind: "status", path: `/runs/${runId}/status`,
    body: { status: "safe" }, label: "I am safe" }));
  help.addEventListener("click", () => {
    needHelp = true;
    outbox.enqueue({ runId, kind: "status", path: `/runs/${runId}/status`, body: { status: "need_help" }, label: "I need help" });
    drawSubmit();
  });

  const homeRoom = rooms.find((room) => room.id === me.home_room_id);
  const roomSelect = h("select", { id: "checkin-room", "data-testid": "room" },
    homeRoom ? null : h("option", { value: "", text: "Choose your room" }),
    rooms.map((room) => h("option", { value: room.id, text: room.name || `Room ${room.number}`,
      selected: room.id === me.home_room_id })));
  const chosenRoom = () => rooms.find((r) => r.id === Number(roomSelect.value)) || null;
  const expectedLine = h("p", { class: "muted", "data-testid": "expected" });
  // Where the class is now, when it is not in its room: one of the playbook's assembly points.
  const place = h("select", { id: "checkin-location", "data-testid": "location" },
    h("option", { value: "", text: "In our room" }),
    assemblyPoints.map((point) => h("option", { value: point, text: point })));
  const names = h("div", { class: "stack" });
  const note = h("input", { id: "checkin-note", type: "text", maxlength: "600", placeholder: "Note (optional)" });
  const empty = h("input", { id: "checkin-empty", type: "checkbox", "data-testid": "room-empty" });
  const submit = h("button", { type: "submit", class: "button button-primary button-huge", "data-testid": "send-checkin" });
  const sent = h("section", { class: "stack", "data-testid": "checkin-history", "aria-live": "polite" });
  const extensions = h("div", { class: "stack", "data-section": "checkin-extensions" });

  const counters = {};
  for (const [name, label, hint] of COUNTS) {
    counters[name] = counter(name, label, hint, (value) => {
      counts[name] = value;
      if (name === "present") presentByHand = true;
      else followExpected();
      if (name === "missing" || name === "injured") drawNames();
      drawSubmit();
    });
  }

  function setCount(name, value) {
    counts[name] = Math.max(0, Math.min(MAX, value));
    counters[name].set(counts[name]);
    if (name === "present") presentByHand = true;
    else followExpected();
    if (name === "missing" || name === "injured") drawNames();
    drawSubmit();
  }

  // Present = the room's expected count, less the missing and absent, plus the extra.
  function followExpected() {
    if (presentByHand) return;
    const capacity = (chosenRoom() && chosenRoom().capacity) || 0;
    counts.present = Math.max(0, capacity - counts.missing - counts.absent + counts.extra);
    counters.present.set(counts.present);
  }

  function drawExpected() {
    const room = chosenRoom();
    expectedLine.textContent = room && room.capacity ? `Expected in ${room.name || room.number}: ${room.capacity}`
      : "Count the students you can see.";
  }

  roomSelect.addEventListener("change", () => {
    followExpected();
    drawExpected();
    drawSubmit();
    roomListeners.forEach((fn) => fn(chosenRoom()));
  });
  empty.addEventListener("change", () => {
    for (const [name] of COUNTS) if (name !== "absent") counters[name].disable(empty.checked);
    drawSubmit();
  });

  function nameInputs(kind, count, label) {
    const existing = [...names.querySelectorAll(`input[data-kind="${kind}"]`)].map((i) => i.value);
    return Array.from({ length: Math.min(count, 30) }, (_, i) => h("input", {
      type: "text", maxlength: "100", "data-kind": kind, "data-testid": `${kind}-name`, value: existing[i] || "",
      "aria-label": `${label} student ${i + 1}: name`, placeholder: `${label} student ${i + 1}: name`,
    }));
  }

  function drawNames() {
    replace(names,
      counts.missing ? h("p", { class: "field-title", text: "Who is missing?" }) : null,
      nameInputs("missing", counts.missing, "Missing"),
      counts.injured ? h("p", { class: "field-title", text: "Who is injured?" }) : null,
      nameInputs("injured", counts.injured, "Injured"));
  }

  function status() {
    if (needHelp) return "need_help";
    return counts.missing > 0 ? "students_missing" : "all_accounted";
  }

  // Nobody counted and the room not said to be empty: nothing is sent (an untouched form is not "all accounted").
  function nobody() {
    return !empty.checked && !needHelp && !(counts.present || counts.missing || counts.injured || counts.extra);
  }

  function drawSubmit() {
    const s = status();
    const parts = [`${counts.present} present`, counts.missing ? `${counts.missing} missing` : null,
      counts.injured ? `${counts.injured} injured` : null].filter(Boolean).join(", ");
    submit.disabled = nobody();
    submit.textContent = empty.checked ? "Send: room empty" : nobody() ? "Count your students first"
      : s === "need_help" ? `Send: I need help — ${parts}` : s === "students_missing" ? `Send: ${parts}`
        : counts.injured ? `Send: ${parts}` : `Send: all accounted — ${parts}`;
    const look = s === "need_help" ? "button-danger" : s === "students_missing" || counts.injured ? "button-warn" : "button-good";
    submit.className = `button button-huge ${empty.checked ? "button-good" : look}`;
  }

  function drawHistory() {
    const waiting = outbox.queued(runId).filter((item) => item.kind !== "checklist").map((item) => h("p", {
      class: "queued", "data-testid": "queued",
      text: `Queued on this phone: ${item.label} (${time(item.queued_at)}) — will send when the connection returns` }));
    const done = outbox.history(runId).filter((item) => item.kind !== "checklist").slice(0, 5).map((item) => h("p", {
      class: item.outcome === "sent" ? "sent" : "notice notice-error", "data-testid": item.outcome === "sent" ? "sent" : "refused",
      text: item.outcome === "sent" ? `Sent: ${item.label} (${time(item.sent_at)})` : `Not accepted: ${item.label} — ${item.message}`,
    }));
    replace(sent, waiting, done);
    drawAck();
  }

  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Report your class" },
    h("label", { for: "checkin-room", text: "Room" }), roomSelect, expectedLine,
    COUNTS.map(([name]) => counters[name].row),
    names,
    h("div", { class: "check-row" }, empty, h("label", { for: "checkin-empty", text: "Nobody is with me (room empty, planning period)" })),
    extensions,
    assemblyPoints.length ? h("label", { for: "checkin-location", text: "Where are you?" }) : null,
    assemblyPoints.length ? place : null,
    h("label", { for: "checkin-note", text: "Note" }), note,
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    // A double tap must not queue two reports.
    submit.disabled = true;
    setTimeout(drawSubmit, 2000);
    const namesOf = (kind) => [...names.querySelectorAll(`input[data-kind="${kind}"]`)].map((i) => i.value.trim()).filter(Boolean);
    const room = chosenRoom();
    const isEmpty = empty.checked;
    const body = {
      room_id: room ? room.id : null, status: isEmpty ? "all_accounted" : status(),
      present: isEmpty ? 0 : counts.present, absent: counts.absent, missing: isEmpty ? 0 : counts.missing,
      injured: isEmpty ? 0 : counts.injured, extra: isEmpty ? 0 : counts.extra, location: place.value || null,
      missing_students: isEmpty ? [] : namesOf("missing"), injured_students: isEmpty ? [] : namesOf("injured"),
      note: note.value.trim() || null, room_empty: isEmpty,
    };
    outbox.enqueue({ runId, kind: "checkin", path: `/runs/${runId}/checkins`, body,
      label: `Check-in ${room ? room.name : body.location || ""}: ${isEmpty ? "room empty" : statusWord(body.status)}, `
        + `${body.present} present${body.missing ? `, ${body.missing} missing` : ""}${body.injured ? `, ${body.injured} injured` : ""}` });
  });

  const ended = h("div");
  function drawState() {
    replace(header, runHeader(run));
    form.hidden = run.state !== "active";
    replace(ended, run.state !== "active" ? h("a", { class: "button button-big", href: "#/", text: "Home" }) : null);
  }

  // Student rosters (roster.js): the class by name when the school imported one; the counts below stay.
  const rosterBox = h("section", { class: "stack", "data-testid": "roster" });
  const mountRoster = () => mountRoomRoster(rosterBox, runId, roomSelect.value ? Number(roomSelect.value) : null)
    .catch(() => replace(rosterBox));
  roomSelect.addEventListener("change", mountRoster);

  const checklist = h("section", { class: "stack" });
  replace(main, header, ack,
    h("div", { class: "pair" }, safe, help),
    rosterBox,
    h("h2", { class: "section-title", text: "Report your class" }),
    h("p", { class: "muted", text: "Count only the students you can see." }),
    form, sent, ended, checklist,
    h("a", { class: "button", href: "#/", text: "Home" }));
  followExpected();
  drawExpected();
  drawNames();
  drawSubmit();
  drawHistory();
  drawState();
  mountRoster();

  const checklistDone = checklistPanel(checklist, runId, () => run);
  const extended = runExtensions("checkin", {
    run, section: extensions, room: chosenRoom, counts, setCount,
    onRoomChange(fn) { roomListeners.add(fn); return () => roomListeners.delete(fn); },
  });
  const offOutbox = outbox.onChange(drawHistory);
  const offLive = live.subscribe(async (name, event) => {
    if (event.run_id !== runId || !name.startsWith("run.")) return;
    run = await get(`/runs/${runId}`).catch(() => run);
    setRunMode(run.mode, run);
    drawState();
  });
  return () => { offOutbox(); offLive(); checklistDone(); extended(); };
}
