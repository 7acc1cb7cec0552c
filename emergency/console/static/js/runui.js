// What every run screen shares: the drill / real banner and the words for actions and statuses.

import { h } from "./dom.js";

export const SRP = ["hold", "secure", "lockdown", "evacuate", "shelter"];

export const ROOM_STATUS = {
  unreported: { label: "Not reported", className: "tile-grey" },
  all_accounted: { label: "All accounted", className: "tile-green" },
  students_missing: { label: "Students missing", className: "tile-amber" },
  need_help: { label: "Needs help", className: "tile-red" },
};

// How a room looks on the board, from the roll-up's `attention` (worst first). A missing or
// injured student is never green, whatever status the phone sent.
export const ATTENTION = {
  need_help: { rank: 0, label: "Needs help", className: "tile-red" },
  missing: { rank: 1, label: "Missing", className: "tile-amber" },
  injured: { rank: 2, label: "Injured", className: "tile-amber" },
  unreported: { rank: 3, label: "Not reported", className: "tile-grey" },
  accounted: { rank: 4, label: "All accounted", className: "tile-green" },
};

// Drills and real emergencies must never be confused: every screen of a run shows which it is.
// Once the run is over, the end comes first: a police officer glancing at the phone must not
// read "REAL EMERGENCY" after the all-clear. No run, no banner (the start screen included).
export function setRunMode(mode, run = null) {
  const banner = document.getElementById("mode-banner");
  const ended = Boolean(run && run.state && run.state !== "active");
  document.body.classList.toggle("mode-drill", mode === "drill" && !ended);
  document.body.classList.toggle("mode-real", mode === "real" && !ended);
  document.body.classList.toggle("mode-ended", Boolean(mode) && ended);
  if (!mode) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.hidden = false;
  if (ended) {
    banner.className = "mode-banner mode-banner-ended";
    banner.textContent = `${endedText(run)} (${mode === "drill" ? "drill" : "real emergency"})`;
    return;
  }
  banner.className = `mode-banner mode-banner-${mode}`;
  banner.textContent = mode === "drill" ? "DRILL — THIS IS A DRILL" : "REAL EMERGENCY";
}

export function endedText(run) {
  return run.end_reason === "all_clear" ? "ALL CLEAR — this run is over"
    : run.end_reason === "cancelled" ? "CANCELLED — sent in error" : "ENDED";
}

export function modeLabel(mode) {
  return mode === "drill" ? "DRILL" : "REAL EMERGENCY";
}

export function runHeader(run) {
  const ended = run.state !== "active";
  return h("section", { class: `run-header run-header-${run.mode} ${ended ? "run-header-ended" : ""}`, "data-testid": "run-header" },
    ended ? h("h1", { class: "run-ended", "data-testid": "run-ended", text: endedText(run) }) : null,
    h("p", { class: "run-school", text: run.school ? run.school.name : "" }),
    h(ended ? "p" : "h1", { class: "run-action", text: (run.playbook && run.playbook.name) || run.action }),
    ended ? null : h("p", { class: "run-directive", text: run.directive || "" }),
    run.location && !ended ? h("p", { class: "run-location", text: `Location: ${run.location}` }) : null,
    ended && run.end_message ? h("p", { class: "run-directive", text: run.end_message }) : null);
}

function roomLabel(room) {
  if (!room) return "";
  return room.label || room.name || (room.number ? `Room ${room.number}` : "");
}

export function eventText(event) {
  const p = event.payload || {};
  switch (event.type) {
    case "run.started": return `Started: ${p.name || p.playbook || ""} (${p.mode || ""})`;
    case "run.updated": return `Update: ${p.message || ""}`;
    case "run.action_changed": return `Action changed to ${p.name || p.playbook || ""}`;
    case "run.ended": return p.reason === "all_clear" ? `All clear${p.message ? `: ${p.message}` : ""}`
      : p.reason === "cancelled" ? `Cancelled: ${p.message || ""}` : `Ended (${p.reason || ""})`;
    case "checkin.recorded": return `${roomLabel(p.room) || p.location || "Check-in"}: ${statusWord(p.status)}`
      + ` — ${p.present ?? 0} present${p.missing ? `, ${p.missing} missing` : ""}${p.injured ? `, ${p.injured} injured` : ""}`;
    case "checklist.ticked": return `${p.done ? "Done" : "Not done"}: ${p.text || ""}`;
    case "ack.recorded": return `Acknowledged by ${p.name || "staff"} (${p.channel || "app"})`;
    case "staff.status": return `${(p.person && p.person.name) || "Staff"}: ${p.status === "need_help" ? "NEEDS HELP" : "safe"}`
      + `${p.location || p.room ? ` — ${p.location || roomLabel(p.room)}` : ""}`;
    case "recipient.unreachable":
    case "alert.unreachable": return `Not reached: ${p.name || (p.recipients || []).map((r) => r.name).join(", ") || "someone"}`;
    case "alert.failed": return `Message failed: ${p.recipient || ""} (${p.channel || ""})`;
    case "push.device_removed": return `Push notifications lost: ${p.recipient || ""} (device no longer subscribed; ${p.devices_left ?? 0} left)`;
    case "alert.opted_out": return `Opted out of texts: ${p.name || (p.recipients || []).map((r) => r.name).join(", ")}`;
    default: return event.type.replace(/[._]/g, " ");
  }
}

export function statusWord(status) {
  return (ROOM_STATUS[status] || { label: status || "" }).label;
}

export function who(actor) {
  return actor && actor.name && actor.kind !== "system" ? actor.name : "";
}
