import { get, user } from "../api.js";
import { h, replace, time } from "../dom.js";
import * as live from "../live.js";
import * as outbox from "../outbox.js";
import { loadPlaybooks } from "../playbooks.js";
import { loadRooms } from "../rollup.js";
import { mountRoomRoster } from "../roster.js";
import { runHeader, setRunMode, statusWord } from "../runui.js";

const COUNTS = [
  ["present", "Present", "Students you can see"],
  ["missing", "Missing", "Should be with you, not here"],
  ["injured", "Injured", ""],
  ["extra", "Extra", "From other rooms, with you"],
  ["absent", "Absent today", "Not in school"],
];

function stepper(name, label, hint, value, onChange) {
  const output = h("output", { id: `count-${name}`, class: "stepper-value", "data-testid": `count-${name}`, text: String(value) });
  const minus = h("button", { type: "button", class: "stepper-button", "aria-label": `${label} minus one`, text: "−",
    "data-testid": `minus-${name}` });
  const plus = h("button", { type: "button", class: "stepper-button", "aria-label": `${label} plus one`, text: "+",
    "data-testid": `plus-${name}` });
  const set = (v) => { value = Math.max(0, Math.min(999, v)); output.textContent = String(value); onChange(value); };
  minus.addEventListener("click", () => set(value - 1));
  plus.addEventListener("click", () => set(value + 1));
  // A long press repeats, for a class of thirty.
  for (const [button, step] of [[minus, -1], [plus, 1]]) {
    let repeat = null;
    const stop = () => { clearInterval(repeat); clearTimeout(repeat); repeat = null; };
    button.addEventListener("pointerdown", () => {
      repeat = setTimeout(() => { repeat = setInterval(() => set(value + step), 90); }, 450);
    });
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(type, stop);
  }
  return h("div", { class: `stepper stepper-${name}` },
    h("div", { class: "stepper-label" }, h("span", { text: label }), hint ? h("small", { text: hint }) : null),
    minus, output, plus);
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
  let run = await get(`/runs/${runId}`);
  setRunMode(run.mode);
  const [rooms, playbooks] = await Promise.all([loadRooms(run.school_id), loadPlaybooks()]);
  // The run's own playbook snapshot first: an edited playbook never changes a running drill.
  const playbook = playbooks.find((p) => p.key === run.playbook.key) || {};
  const assemblyPoints = (run.playbook.accountability || {}).assembly_points
    || (playbook.accountability || {}).assembly_points || [];
  const counts = { present: 0, missing: 0, injured: 0, extra: 0, absent: 0 };
  let needHelp = false;

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

  const roomSelect = h("select", { id: "checkin-room", "data-testid": "room" },
    me.home_room_id ? null : h("option", { value: "", text: "Choose your room" }),
    rooms.map((room) => h("option", { value: room.id, text: room.name || `Room ${room.number}`,
      selected: room.id === me.home_room_id })));
  // Where the class is now, when it is not in its room: one of the playbook's assembly points.
  const place = h("select", { id: "checkin-location", "data-testid": "location" },
    h("option", { value: "", text: "In our room" }),
    assemblyPoints.map((point) => h("option", { value: point, text: point })));
  const names = h("div", { class: "stack" });
  const note = h("input", { id: "checkin-note", type: "text", maxlength: "600", placeholder: "Note (optional)" });
  const submit = h("button", { type: "submit", class: "button button-primary button-huge", "data-testid": "send-checkin" });
  const sent = h("section", { class: "stack", "data-testid": "checkin-history", "aria-live": "polite" });

  function nameInputs(kind, count, label) {
    const existing = [...names.querySelectorAll(`input[data-kind="${kind}"]`)].map((i) => i.value);
    return Array.from({ length: Math.min(count, 30) }, (_, i) => h("input", {
      type: "text", maxlength: "120", "data-kind": kind, "data-testid": `${kind}-name`, value: existing[i] || "",
      "aria-label": `${label} student ${i + 1}`, placeholder: `${label} student ${i + 1}: name`,
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

  function drawSubmit() {
    const s = status();
    submit.textContent = s === "all_accounted" ? "Send: all accounted for" : s === "students_missing"
      ? `Send: ${counts.missing} missing` : "Send: I need help";
    submit.className = `button button-huge ${s === "all_accounted" ? "button-good" : s === "students_missing" ? "button-warn" : "button-danger"}`;
  }

  function drawHistory() {
    const waiting = outbox.queued(runId).map((item) => h("p", { class: "queued", "data-testid": "queued",
      text: `Queued on this phone: ${item.label} (${time(item.queued_at)}) — will send when the connection returns` }));
    const done = outbox.history(runId).slice(0, 5).map((item) => h("p", {
      class: item.outcome === "sent" ? "sent" : "notice notice-error", "data-testid": item.outcome === "sent" ? "sent" : "refused",
      text: item.outcome === "sent" ? `Sent: ${item.label} (${time(item.sent_at)})` : `Not accepted: ${item.label} — ${item.message}`,
    }));
    replace(sent, waiting, done);
    drawAck();
  }

  const form = h("form", { class: "stack", novalidate: true },
    h("label", { for: "checkin-room", text: "Room" }), roomSelect,
    COUNTS.map(([name, label, hint]) => stepper(name, label, hint, counts[name], (v) => {
      counts[name] = v;
      if (name === "missing" || name === "injured") drawNames();
      drawSubmit();
    })),
    names,
    assemblyPoints.length ? h("label", { for: "checkin-location", text: "Where are you?" }) : null,
    assemblyPoints.length ? place : null,
    h("label", { for: "checkin-note", text: "Note" }), note,
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    // A double tap must not queue two reports.
    submit.disabled = true;
    setTimeout(() => { submit.disabled = false; }, 2000);
    const namesOf = (kind) => [...names.querySelectorAll(`input[data-kind="${kind}"]`)].map((i) => i.value.trim()).filter(Boolean);
    const roomId = roomSelect.value ? Number(roomSelect.value) : null;
    const room = rooms.find((r) => r.id === roomId);
    const body = {
      room_id: roomId, status: status(), present: counts.present, absent: counts.absent, missing: counts.missing,
      injured: counts.injured, extra: counts.extra, location: place.value || null,
      missing_students: namesOf("missing"), injured_students: namesOf("injured"), note: note.value.trim() || null,
    };
    outbox.enqueue({ runId, kind: "checkin", path: `/runs/${runId}/checkins`, body,
      label: `Check-in ${room ? room.name : body.location || ""}: ${statusWord(body.status)}, ${body.present} present` });
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

  replace(main, header, ack,
    h("div", { class: "pair" }, safe, help),
    rosterBox,
    h("h2", { class: "section-title", text: "Report your class" }),
    h("p", { class: "muted", text: "Count only the students you can see." }),
    form, sent, ended,
    h("a", { class: "button", href: "#/", text: "Home" }));
  drawNames();
  drawSubmit();
  drawHistory();
  drawState();
  mountRoster();

  const offOutbox = outbox.onChange(drawHistory);
  const offLive = live.subscribe(async (name, event) => {
    if (event.run_id !== runId || !name.startsWith("run.")) return;
    run = await get(`/runs/${runId}`).catch(() => run);
    setRunMode(run.mode);
    drawState();
  });
  return () => { offOutbox(); offLive(); };
}
