// What every run screen shares: the drill / real banner and the words for actions and statuses.

import { h } from "./dom.js";

export const SRP = ["hold", "secure", "lockdown", "evacuate", "shelter"];

export const ROOM_STATUS = {
  unreported: { label: "Not reported", className: "tile-grey" },
  all_accounted: { label: "All accounted", className: "tile-green" },
  students_missing: { label: "Students missing", className: "tile-amber" },
  need_help: { label: "Needs help", className: "tile-red" },
};

// Drills and real emergencies must never be confused: every screen of a run shows which it is.
export function setRunMode(mode) {
  const banner = document.getElementById("mode-banner");
  document.body.classList.toggle("mode-drill", mode === "drill");
  document.body.classList.toggle("mode-real", mode === "real");
  if (!mode) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.hidden = false;
  banner.className = `mode-banner mode-banner-${mode}`;
  banner.textContent = mode === "drill" ? "DRILL — THIS IS A DRILL" : "REAL EMERGENCY";
}

export function modeLabel(mode) {
  return mode === "drill" ? "DRILL" : "REAL EMERGENCY";
}

export function runHeader(run) {
  const ended = run.state !== "active";
  return h("section", { class: `run-header run-header-${run.mode}`, "data-testid": "run-header" },
    h("p", { class: "run-school", text: run.school ? run.school.name : "" }),
    h("h1", { class: "run-action", text: (run.playbook && run.playbook.name) || run.action }),
    h("p", { class: "run-directive", text: run.directive || "" }),
    run.location ? h("p", { class: "run-location", text: `Location: ${run.location}` }) : null,
    ended ? h("p", { class: "run-ended", "data-testid": "run-ended",
      text: run.end_reason === "all_clear" ? "ALL CLEAR — this run is over" :
        run.end_reason === "cancelled" ? "CANCELLED — sent in error" : "ENDED" }) : null);
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
