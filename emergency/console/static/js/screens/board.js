// The principal's live board: a triage list. Rooms that need someone (help, missing, injured)
// come first with names, then rooms not yet reported, then rooms accounted for. The totals stay
// at the top and "Send update" / "All clear" at the bottom while the list scrolls.

import { ApiError, cachedGet, get, post } from "../api.js";
import { h, replace, sinceText, time, toast } from "../dom.js";
import { runExtensions } from "../hooks.js";
import * as live from "../live.js";
import * as outbox from "../outbox.js";
import { loadPlaybooks } from "../playbooks.js";
import { checklistPanel } from "../checklist.js";
import { loadAlerts, loadRollup, tiles, totals } from "../rollup.js";
import { mountSchoolList } from "../roster.js";
import { ATTENTION, runHeader, setRunMode } from "../runui.js";
import { Timeline } from "../timeline.js";

function stat(label, value, testid, className = "") {
  return h("div", { class: `stat ${className}` },
    h("span", { class: "stat-value", "data-testid": testid, text: String(value ?? 0) }),
    h("span", { class: "stat-label", text: label }));
}

function counts(report) {
  return [report.present != null ? `${report.present} present` : null, report.missing ? `${report.missing} missing` : null,
    report.injured ? `${report.injured} injured` : null, report.extra ? `${report.extra} extra` : null]
    .filter(Boolean).join(" · ");
}

function names(report) {
  return [...(report.missing_students || []).map((n) => `Missing: ${n}`),
    ...(report.injured_students || []).map((n) => `Injured: ${n}`)];
}

// A problem room: a full-width row with what to act on, names included (admins only get names).
function problemRow(room, open) {
  const look = ATTENTION[room.attention];
  const report = room.report;
  const who = report.reporter && report.reporter.name;
  const button = h("button", { type: "button", class: `tile tile-row ${look.className}`, "data-testid": "room-tile",
    "data-room-id": room.id, "data-status": report.status, "data-attention": room.attention,
    "aria-label": `${room.name}: ${look.label}. ${counts(report)}. Open details` },
  h("span", { class: "tile-name", text: room.name }),
  h("span", { class: "tile-status", text: `${look.label} · ${counts(report)}` }),
  names(report).length ? h("span", { class: "tile-names", "data-testid": "tile-names", text: names(report).join(" · ") }) : null,
  h("span", { class: "tile-meta" }, who ? `${who} · ` : "", sinceText(report.reported_at)));
  button.addEventListener("click", () => open(room));
  return button;
}

function chip(room, open) {
  const look = ATTENTION[room.attention];
  const button = h("button", { type: "button", class: `tile tile-chip ${look.className}`, "data-testid": "room-tile",
    "data-room-id": room.id, "data-status": room.report ? room.report.status : "unreported", "data-attention": room.attention,
    "aria-label": `${room.name}: ${look.label}${room.report ? `, ${counts(room.report)}` : ""}. Open details` },
  h("span", { class: "tile-name", text: room.number || room.name }),
  room.report ? h("span", { class: "tile-status", text: room.report.present === 0 && !room.report.extra ? "empty"
    : `${room.report.present}` }) : null);
  button.addEventListener("click", () => open(room));
  return button;
}

function section(title, testid, rooms, draw, className) {
  if (!rooms.length) return null;
  return h("section", { class: "stack", "data-testid": testid },
    h("h2", { class: "section-title", text: `${title} (${rooms.length})` }),
    h("div", { class: className }, rooms.map(draw)));
}

function detail(label, value) {
  return value === null || value === undefined || value === "" ? null
    : h("div", { class: "detail" }, h("dt", { text: label }), h("dd", {}, value));
}

function roomDetails(room) {
  const report = room.report;
  const look = ATTENTION[room.attention];
  if (!report) {
    return [h("p", { class: `notice`, text: "This room has not reported yet." })];
  }
  return [
    h("p", { class: `tile ${look.className} tile-banner`, text: look.label }),
    h("dl", { class: "details" },
      detail("Reported by", report.reporter && report.reporter.name),
      detail("When", h("span", {}, `${time(report.reported_at)} (`, sinceText(report.reported_at), ")")),
      detail("Present", String(report.present ?? 0)),
      detail("Missing", String(report.missing ?? 0)),
      detail("Injured", String(report.injured ?? 0)),
      detail("Extra", report.extra ? String(report.extra) : null),
      detail("Absent today", report.absent ? String(report.absent) : null),
      detail("Where", report.location),
      detail("Missing students", (report.missing_students || []).join(", ")),
      detail("Injured students", (report.injured_students || []).join(", ")),
      detail("Note", report.note),
      detail("Reports sent", report.reports > 1 ? String(report.reports) : null)),
  ];
}

// A modal panel: the native <dialog> gives focus trapping, Escape and a backdrop for free.
function dialog(testid) {
  const body = h("div", { class: "stack" });
  const close = h("button", { type: "button", class: "button", text: "Close" });
  const box = h("dialog", { class: "panel", tabindex: "-1", "data-testid": testid, "aria-labelledby": `${testid}-title` },
    h("h2", { id: `${testid}-title`, class: "panel-title" }), body, close);
  close.addEventListener("click", () => box.close());
  document.body.append(box);
  return {
    box,
    show(title, ...children) {
      box.querySelector(".panel-title").textContent = title;
      replace(body, children);
      if (!box.open) {
        box.showModal();
        // Start at the top (what is open), not at the first field the browser would focus.
        box.focus();
        box.scrollTop = 0;
      }
    },
    close() { if (box.open) box.close(); },
    remove() { box.remove(); },
  };
}

// A long list of names is cut to its first few: the count is what decides the all-clear.
function someOf(names, most = 6) {
  return names.length > most ? `${names.slice(0, most).join(", ")} and ${names.length - most} more` : names.join(", ");
}

function openItemsList(items) {
  const lines = [];
  const rooms = (list) => list.map((r) => (r.room && (r.room.label || r.room.number)) || "?").join(", ");
  if (items.rooms_needing_help.length) lines.push(["bad", `Need help: ${rooms(items.rooms_needing_help)}`]);
  if (items.staff_needing_help.length) {
    lines.push(["bad", `Staff needing help: ${items.staff_needing_help.map((s) => s.person.name).join(", ")}`]);
  }
  if (items.missing) {
    const named = items.rooms_with_missing.flatMap((r) => r.missing_students || []);
    lines.push(["bad", `${items.missing} student${items.missing > 1 ? "s" : ""} missing${named.length ? `: ${named.join(", ")}` : ""}`
      + ` (${rooms(items.rooms_with_missing)})`]);
  }
  if (items.injured) lines.push(["warn", `${items.injured} injured (${rooms(items.rooms_with_injured)})`]);
  if (items.unreported_rooms.length) {
    lines.push(["warn", `${items.unreported_rooms.length} room${items.unreported_rooms.length > 1 ? "s" : ""} not reported: `
      + someOf(items.unreported_rooms.map((r) => r.number || r.label), 10)]);
  }
  if (items.unacknowledged.length) {
    lines.push(["warn", `${items.unacknowledged.length} not acknowledged: ${someOf(items.unacknowledged.map((p) => p.name))}`]);
  }
  return h("ul", { class: "open-items", "data-testid": "open-items" },
    lines.map(([kind, text]) => h("li", { class: `notice notice-${kind === "bad" ? "error" : "warn"}`, text })));
}

export async function render(main, runId) {
  let run = await cachedGet(`/runs/${runId}`);
  let rollup = {};
  setRunMode(run.mode, run);
  const header = h("div");
  const startedLine = h("p", { class: "muted" });
  const summary = h("section", { class: "stats stats-sticky", "data-testid": "totals", "aria-label": "Totals" });
  const list = h("div", { class: "stack", "data-testid": "tiles" });
  const help = h("section", { class: "stack" });
  const alertsBox = h("section", { class: "stack", "data-testid": "alerts" });
  const checklist = h("section", { class: "stack" });
  const controls = h("section", { class: "stack controls" });
  const actionBar = h("nav", { class: "action-bar", "aria-label": "Run actions" });
  const extensions = h("div", { class: "stack", "data-section": "board-extensions" });
  const timeline = new Timeline(runId);
  const roomPanel = dialog("room-panel");
  const updatePanel = dialog("update-panel");
  const clearPanel = dialog("all-clear-panel");
  let openRoomId = null;
  let drawn = [];

  function openRoom(room) {
    openRoomId = room.id;
    roomPanel.show(room.name, roomDetails(room));
  }
  roomPanel.box.addEventListener("close", () => { openRoomId = null; });

  async function refresh() {
    const [fresh, freshRollup, alerts] = await Promise.all([get(`/runs/${runId}`), loadRollup(runId), loadAlerts(runId)]);
    run = fresh;
    rollup = freshRollup;
    setRunMode(run.mode, run);
    replace(header, runHeader(run));
    replace(startedLine, sinceText(run.started_at, "Started ", ` by ${(run.started_by && run.started_by.name) || "?"}`));
    drawn = tiles(rollup);
    const t = totals(rollup);
    const ack = (run.counts && run.counts.alerts) || {};
    const needHelp = (rollup.need_help || []).length + (rollup.staff_needing_help || []).length;
    replace(summary,
      stat("rooms reported", `${rollup.reported ?? 0}/${rollup.expected ?? 0}`, "rooms-reported",
        (rollup.percent_reported ?? 0) >= 100 ? "stat-good" : ""),
      stat("need help", needHelp, "total-help", needHelp ? "stat-bad" : ""),
      stat("missing", t.missing, "total-missing", t.missing ? "stat-bad" : ""),
      stat("injured", t.injured, "total-injured", t.injured ? "stat-warn" : ""),
      stat("present", t.present, "total-present"),
      stat("acknowledged", `${ack.acknowledged ?? 0}/${ack.asked ?? 0}`, "acks"));
    const problems = drawn.filter((r) => ATTENTION[r.attention].rank < ATTENTION.unreported.rank);
    replace(list,
      rollup.fully_accounted_at ? h("p", { class: "notice notice-good", text: "Every room is accounted for." }) : null,
      section("Needs attention", "problem-rooms", problems, (r) => problemRow(r, openRoom), "stack"),
      section("Not reported", "unreported-rooms", drawn.filter((r) => r.attention === "unreported"), (r) => chip(r, openRoom), "tiles"),
      section("Accounted for", "accounted-rooms", drawn.filter((r) => r.attention === "accounted"), (r) => chip(r, openRoom), "tiles"),
      drawn.length ? null : h("p", { class: "muted", text: "No rooms are expected to report." }));
    const staff = rollup.staff_needing_help || [];
    replace(help, staff.length ? h("h2", { class: "section-title danger", text: "Staff needing help" }) : null,
      staff.map((s) => h("p", { class: "notice notice-error", "data-testid": "need-help",
        text: `${s.person.name}${s.location || s.room ? ` — ${s.location || s.room.label || s.room.name}` : ""}` })));
    const unreachable = alerts.unreachable || [];
    const optedOut = alerts.opted_out || [];
    const texts = (alerts.queue && alerts.queue.sms) || {};
    const pushes = (alerts.queue && alerts.queue.push) || {};
    replace(alertsBox,
      h("h2", { class: "section-title", text: "Alerts" }),
      h("p", { text: `${ack.acknowledged ?? 0} of ${ack.asked ?? 0} acknowledged · ${ack.pending ?? 0} still sending · ${ack.total ?? 0} messages` }),
      texts.waiting ? h("p", { class: "muted", "data-testid": "queue", text: `${texts.waiting} texts to send, ${
        texts.ahead} of other runs ahead${texts.eta_seconds == null ? "" : `, about ${Math.ceil(texts.eta_seconds)} s to go`}` }) : null,
      pushes.waiting ? h("p", { class: "muted", "data-testid": "push-queue",
        text: `${pushes.waiting} phone notification${pushes.waiting > 1 ? "s" : ""} to send` }) : null,
      unreachable.length ? h("p", { class: "notice notice-warn", "data-testid": "unreachable",
        text: `Unreachable (${unreachable.length}): ${unreachable.map((p) => p.name).join(", ")}` }) : null,
      optedOut.length ? h("p", { class: "muted",
        text: `Opted out of texts (called instead): ${optedOut.map((p) => p.name).join(", ")}` }) : null);
    if (openRoomId !== null) {
      const room = drawn.find((r) => r.id === openRoomId);
      if (room) roomPanel.show(room.name, roomDetails(room));
    }
    drawControls();
  }

  let controlsFor = null;
  async function drawControls() {
    const state = `${run.state}:${run.playbook.key}`;
    if (controlsFor === state) return;
    controlsFor = state;
    if (run.state !== "active") {
      replace(actionBar);
      actionBar.hidden = true;
      replace(controls, h("a", { class: "button", href: "#/compliance", text: "Drill records and reports" }));
      updatePanel.close();
      clearPanel.close();
      return;
    }
    const message = h("textarea", { id: "update-message", rows: "3", maxlength: "600", "aria-label": "Update for everyone",
      placeholder: "Update for everyone" });
    const sendUpdate = h("button", { type: "button", class: "button button-primary button-big", "data-testid": "send-update-now",
      text: "Send to everyone" });
    sendUpdate.addEventListener("click", () => {
      if (!message.value.trim()) {
        toast("Write the update first.", "error");
        message.focus();
        return;
      }
      act(sendUpdate, `/runs/${runId}/updates`, { message: message.value.trim() }, () => {
        message.value = "";
        updatePanel.close();
      });
    });
    const openUpdate = h("button", { type: "button", class: "button button-primary", "data-testid": "send-update",
      text: "Send update" });
    openUpdate.addEventListener("click", () => {
      updatePanel.show("Send an update", message, sendUpdate);
      message.focus();
    });

    const allClear = h("button", { type: "button", class: "button button-good", "data-testid": "all-clear", text: "All clear" });
    allClear.addEventListener("click", () => showOpenItems(allClear));
    replace(actionBar, openUpdate, allClear);
    actionBar.hidden = false;

    const playbooks = (await loadPlaybooks()).filter((p) => (p.modes || ["drill", "real"]).includes(run.mode));
    const current = run.playbook.key;
    const choose = h("select", { id: "change-action", "data-testid": "change-action" },
      playbooks.map((p) => h("option", { value: p.key, selected: p.key === current,
        text: p.key === current ? `${p.name} (now)` : p.name })));
    const change = h("button", { type: "button", class: "button", text: "Change action", disabled: true });
    choose.addEventListener("change", () => { change.disabled = choose.value === current; });
    change.addEventListener("click", () => act(change, `/runs/${runId}/action`, { playbook: choose.value }));

    const reason = h("input", { id: "cancel-reason", type: "text", maxlength: "600", placeholder: "Why (false alarm…)" });
    const cancel = h("button", { type: "button", class: "button button-quiet", text: "Cancel run (sent in error)" });
    cancel.addEventListener("click", () => {
      if (!reason.value.trim()) {
        toast("Say why the run is cancelled.", "error");
        reason.focus();
        return;
      }
      act(cancel, `/runs/${runId}/cancel`, { reason: reason.value.trim() });
    });
    replace(controls,
      h("label", { for: "change-action", text: `Action: ${run.playbook.name}` }), choose, change,
      h("details", { class: "danger-zone" }, h("summary", { text: "Cancel as sent in error" }),
        h("label", { for: "cancel-reason", text: "Reason" }), reason, cancel),
      h("a", { class: "button", href: `#/run/${runId}/checkin`, text: "Check in a room" }));
  }

  // The all-clear shows what is still open first; the principal confirms with eyes open.
  async function showOpenItems(button) {
    button.disabled = true;
    let items;
    try {
      items = await get(`/runs/${runId}/open-items`);
    } catch (err) {
      toast(err instanceof ApiError ? err.message : `Could not check what is open: ${err.message}`, "error");
      return;
    } finally {
      button.disabled = false;
    }
    const note = h("textarea", { id: "all-clear-message", rows: "2", maxlength: "600", "aria-label": "All-clear message (optional)",
      placeholder: "Message with the all-clear (optional)" });
    const confirm = h("button", { type: "button", class: `button button-big ${items.anything_open ? "button-warn" : "button-good"}`,
      "data-testid": "confirm-all-clear", text: items.anything_open ? "Give the all clear anyway" : "Give the all clear" });
    confirm.addEventListener("click", () => act(confirm, `/runs/${runId}/all-clear`,
      { message: note.value.trim() || null }, () => clearPanel.close()));
    clearPanel.show(items.anything_open ? "Still open" : "Nothing is open",
      items.anything_open ? openItemsList(items) : h("p", { class: "notice notice-good", text: "Every room reported, nobody missing, everyone acknowledged." }),
      note, confirm);
  }

  async function act(button, path, body, done) {
    button.disabled = true;
    try {
      await post(path, body);
      if (done) done();
      toast("Sent.", "good");
      await Promise.all([refresh(), timeline.fill()]);
    } catch (err) {
      toast(err instanceof ApiError ? err.message : `Not sent: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  // Student rosters (roster.js): the school's unaccounted list, live; empty without a roster.
  const rosterBox = h("section", { class: "stack", "data-testid": "school-roster" });
  replace(main, header, startedLine, summary, list, rosterBox, help, checklist, extensions, alertsBox, controls,
    h("h2", { class: "section-title", text: "Timeline" }), timeline.list,
    h("a", { class: "button", href: "#/", text: "Home" }), actionBar);
  const checklistDone = checklistPanel(checklist, runId, () => run);
  const extended = runExtensions("board", { run, section: extensions, rollup: () => rollup });
  const [offRoster] = await Promise.all([mountSchoolList(rosterBox, runId).catch(() => () => {}), refresh(),
    timeline.fill()]);

  const stopFollowing = live.followRun(runId, timeline, refresh, 150);
  // What this phone sent itself (a checklist tick) shows on its timeline even before the live echo.
  const offOutbox = outbox.onChange(() => timeline.fill().catch(() => {}));
  return () => {
    stopFollowing();
    offOutbox();
    offRoster();
    checklistDone();
    extended();
    for (const panel of [roomPanel, updatePanel, clearPanel]) panel.remove();
  };
}
