import { ApiError, get, post } from "../api.js";
import { h, replace, since, toast } from "../dom.js";
import * as live from "../live.js";
import { loadPlaybooks } from "../playbooks.js";
import { loadAlerts, loadRollup, tiles, totals } from "../rollup.js";
import { mountSchoolList } from "../roster.js";
import { ROOM_STATUS, runHeader, setRunMode } from "../runui.js";
import { Timeline } from "../timeline.js";

function stat(label, value, testid, className = "") {
  return h("div", { class: `stat ${className}` },
    h("span", { class: "stat-value", "data-testid": testid, text: String(value ?? 0) }),
    h("span", { class: "stat-label", text: label }));
}

function tile(room) {
  const look = ROOM_STATUS[room.status] || ROOM_STATUS.unreported;
  const report = room.report || {};
  const detail = room.status === "unreported" ? look.label
    : [look.label, report.missing ? `${report.missing} missing` : null, report.injured ? `${report.injured} injured` : null]
      .filter(Boolean).join(" · ");
  return h("div", { class: `tile ${look.className}`, "data-testid": "room-tile", "data-room-id": room.id,
    "data-status": room.status, title: room.name },
  h("span", { class: "tile-name", text: room.number || room.name }),
  h("span", { class: "tile-status", text: detail }));
}

export async function render(main, runId) {
  let run = await get(`/runs/${runId}`);
  setRunMode(run.mode);
  const header = h("div");
  const summary = h("section", { class: "stats", "data-testid": "totals" });
  const grid = h("section", { class: "tiles", "data-testid": "tiles" });
  const help = h("section", { class: "stack" });
  const alertsBox = h("section", { class: "stack", "data-testid": "alerts" });
  const controls = h("section", { class: "stack controls" });
  const timeline = new Timeline(runId);

  async function refresh() {
    const [fresh, rollup, alerts] = await Promise.all([get(`/runs/${runId}`), loadRollup(runId), loadAlerts(runId)]);
    run = fresh;
    setRunMode(run.mode);
    replace(header, runHeader(run), h("p", { class: "muted", text: `Started ${since(run.started_at)} by ${
      (run.started_by && run.started_by.name) || "?"}` }));
    const list = tiles(rollup);
    const t = totals(rollup);
    const expected = rollup.expected ?? 0;
    const reported = rollup.reported ?? 0;
    const ack = (run.counts && run.counts.alerts) || {};
    const percent = rollup.percent_reported ?? 0;
    replace(summary,
      stat("rooms reported", `${reported}/${expected}`, "rooms-reported", percent >= 100 ? "stat-good" : ""),
      stat("present", t.present, "total-present"),
      stat("missing", t.missing, "total-missing", t.missing ? "stat-warn" : ""),
      stat("injured", t.injured, "total-injured", t.injured ? "stat-bad" : ""),
      stat("extra", t.extra, "total-extra"),
      stat("acknowledged", `${ack.acknowledged ?? 0}/${ack.recipients ?? 0}`, "acks"),
      rollup.fully_accounted_at ? h("p", { class: "notice notice-good", text: "Everyone is accounted for." }) : null);
    replace(grid, list.length ? list.map(tile) : h("p", { class: "muted", text: "No rooms are expected to report." }));
    const rooms = rollup.need_help || [];
    const staff = rollup.staff_needing_help || [];
    replace(help, rooms.length || staff.length ? h("h2", { class: "section-title danger", text: "Need help" }) : null,
      rooms.map((r) => h("p", { class: "notice notice-error", "data-testid": "need-help",
        text: `${(r.room && r.room.label) || r.location || "Room"} — reported by ${(r.reporter && r.reporter.name) || "staff"}` })),
      staff.map((s) => h("p", { class: "notice notice-error", "data-testid": "need-help",
        text: `${s.person.name}${s.location || s.room ? ` — ${s.location || s.room.label || s.room.name}` : ""}` })));
    const unreachable = alerts.unreachable || [];
    const optedOut = alerts.opted_out || [];
    const texts = (alerts.queue && alerts.queue.sms) || {};
    replace(alertsBox,
      h("h2", { class: "section-title", text: "Alerts" }),
      h("p", { text: `${ack.acknowledged ?? 0} acknowledged · ${ack.pending ?? 0} still sending · ${ack.total ?? 0} messages` }),
      texts.waiting ? h("p", { class: "muted", "data-testid": "queue", text: `${texts.waiting} texts to send, ${
        texts.ahead} of other runs ahead${texts.eta_seconds == null ? "" : `, about ${Math.ceil(texts.eta_seconds)} s to go`}` }) : null,
      unreachable.length ? h("p", { class: "notice notice-warn", "data-testid": "unreachable",
        text: `Unreachable (${unreachable.length}): ${unreachable.map((p) => p.name).join(", ")}` }) : null,
      optedOut.length ? h("p", { class: "muted",
        text: `Opted out of texts (called instead): ${optedOut.map((p) => p.name).join(", ")}` }) : null,
      (rollup.unreported_rooms || []).length ? h("p", { class: "muted", "data-testid": "unreported",
        text: `Not reported: ${rollup.unreported_rooms.map((r) => r.label || r.name || r.number).join(", ")}` }) : null);
    drawControls();
  }

  let controlsBuilt = false;
  async function drawControls() {
    if (run.state !== "active") {
      replace(controls, h("a", { class: "button", href: "#/compliance", text: "Drill records and reports" }));
      controlsBuilt = false;
      return;
    }
    if (controlsBuilt) return;
    controlsBuilt = true;
    const message = h("textarea", { id: "update-message", rows: "2", maxlength: "600", placeholder: "Update for everyone" });
    const sendUpdate = h("button", { type: "button", class: "button button-primary button-big", "data-testid": "send-update",
      text: "Send update" });
    sendUpdate.addEventListener("click", () => act(sendUpdate, `/runs/${runId}/updates`, { message: message.value.trim() },
      () => { message.value = ""; }));

    const playbooks = (await loadPlaybooks()).filter((p) => (p.modes || ["drill", "real"]).includes(run.mode));
    const choose = h("select", { id: "change-action", "aria-label": "New action" },
      playbooks.filter((p) => p.key !== run.playbook.key).map((p) => h("option", { value: p.key, text: p.name })));
    const change = h("button", { type: "button", class: "button", text: "Change action" });
    change.addEventListener("click", () => act(change, `/runs/${runId}/action`, { playbook: choose.value }));

    const allClear = h("button", { type: "button", class: "button button-good button-big", "data-testid": "all-clear",
      text: "All clear" });
    let armed = null;
    allClear.addEventListener("click", () => {
      if (!armed) {
        allClear.textContent = "Tap again to give the ALL CLEAR";
        allClear.classList.add("armed");
        armed = setTimeout(() => { armed = null; allClear.textContent = "All clear"; allClear.classList.remove("armed"); }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      act(allClear, `/runs/${runId}/all-clear`, { message: message.value.trim() || null });
    });

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
      h("label", { for: "update-message", text: "Send an update" }), message, sendUpdate,
      h("label", { for: "change-action", text: "Change the action" }), choose, change,
      allClear,
      h("details", { class: "danger-zone" }, h("summary", { text: "Cancel as sent in error" }), reason, cancel),
      h("a", { class: "button", href: `#/run/${runId}/checkin`, text: "Check in a room" }));
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
  replace(main, header, summary, grid, rosterBox, help, alertsBox, controls,
    h("h2", { class: "section-title", text: "Timeline" }), timeline.list,
    h("a", { class: "button", href: "#/", text: "Home" }));
  const [offRoster] = await Promise.all([mountSchoolList(rosterBox, runId).catch(() => () => {}), refresh(),
    timeline.fill()]);

  const offRun = live.followRun(runId, timeline, refresh, 150);
  return () => { offRoster(); if (typeof offRun === "function") offRun(); };
}
