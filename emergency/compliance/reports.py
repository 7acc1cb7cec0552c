"""After-action reports of a run (JSON, CSV, a printable page) and drill-by-drill trends.

The report says what happened and how fast: the timeline, who was alerted and who confirmed,
who could not be reached, and how quickly every room reported. Student names never appear in
it, not even for admins: it is a document that gets printed and filed, and the live board is
where a principal acts on names (NY Education Law §2-d: store and show names only where a
person must act on them).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date

from flask import render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.accountability.models import COUNT_FIELDS, Checkin, RoomStatus
from emergency.accountability.rollup import accountability_figures, curve
from emergency.accountability.rooms import unreported_rooms
from emergency.accountability.tally import counts_for_run
from emergency.alerts.ack_tally import ack_tally
from emergency.alerts.acks import ack_stats
from emergency.alerts.delivery import summary as delivery_summary
from emergency.alerts.models import (
    ANSWERED,
    CANCELLED,
    COMPLETED,
    DELIVERED,
    NOT_REACHED,
    QUEUED,
    SENDING,
    Acknowledgement,
    Alert,
)
from emergency.compliance.rules import RuleSet
from emergency.compliance.service import (
    drill_log,
    year_scope,
    zone_of,
)
from emergency.directory.models import Room
from emergency.directory.principal import Principal
from emergency.runs.models import Run, RunEvent
from emergency.runs.partners import report_for_partner
from emergency.runs.service import get_run
from emergency.runs.timeline import events_after
from emergency.timeutil import iso, utcnow

FORMATS = ("json", "csv", "html")
NO_CHECKINS = "No check-ins were recorded for this run."
CSV_COLUMNS = ("section", "seq", "at", "local_time", "elapsed", "elapsed_seconds", "type", "actor", "text",
               "room", "status", "checked_in_at", "seconds_to_check_in", "present", "absent", "missing", "injured",
               "extra", "location", "reporter")
_DELIVERED = (DELIVERED, ANSWERED, COMPLETED)
_END_WORDS = {"all_clear": "All clear", "cancelled": "Cancelled (false alarm)",
              "superseded": "Ended: a real emergency started"}


def run_report(session: Session, principal: Principal, run_id: int) -> dict:
    """The after-action report of a run the caller may see; partners (real runs only) get it redacted."""
    run = get_run(session, principal, run_id)
    report = build_report(session, run)
    return report_for_partner(report) if principal.is_partner else report


def build_report(session: Session, run: Run) -> dict:
    """Everything the after-action report shows, as plain data."""
    events = events_after(session, run.id, 0, limit=1_000_000)
    return {
        "run_id": run.id,
        "summary": summary_of(run),
        "timeline": [timeline_row(run, event) for event in events],
        "alerts": alert_figures(session, run),
        "unreachable": unreachable_recipients(session, run),
        "accountability": accountability_of(session, run),
        "notes": notes_of(run, events),
        "generated_at": iso(utcnow()),
    }


# --- summary and timeline --------------------------------------------------------------------

def _local(run: Run, at, pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str | None:
    """A moment as the school's wall clock showed it (what staff remember), or None."""
    return at.astimezone(zone_of(run.school)).strftime(pattern) if at else None


def summary_of(run: Run) -> dict:
    """Who, what, when and how it ended."""
    school = run.school
    duration = round((run.ended_at - run.started_at).total_seconds(), 3) if run.ended_at else None
    return {
        "school": {"id": school.id, "code": school.code, "name": school.name, "timezone": school.timezone},
        "playbook": {"key": run.playbook_key, "name": run.playbook.get("name"), "version": run.playbook_version,
                     "compliance_category": run.playbook.get("compliance_category")},
        "mode": run.mode, "action": run.action, "directive": run.directive, "location": run.location,
        "state": run.state, "end_reason": run.end_reason, "end_message": run.end_message,
        "started_by": _who(run.started_by), "ended_by": _who(run.ended_by),
        "started_at": iso(run.started_at), "ended_at": iso(run.ended_at),
        "started_local": _local(run, run.started_at), "ended_local": _local(run, run.ended_at),
        "duration_seconds": duration, "duration": clock(duration), "facts": dict(run.facts or {}),
    }


def _who(actor: dict | None) -> dict | None:
    return {"name": actor.get("name"), "role": actor.get("role")} if actor else None


def clock(seconds: float | None) -> str:
    """Seconds as m:ss or h:mm:ss ("" for None), the way a stopwatch shows them."""
    if seconds is None:
        return ""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def timeline_row(run: Run, event: RunEvent) -> dict:
    """One timeline entry with a sentence a reader can follow."""
    elapsed = round((event.created_at - run.started_at).total_seconds(), 3)
    return {"seq": event.seq, "at": iso(event.created_at), "local_time": _local(run, event.created_at, "%H:%M:%S"),
            "elapsed_seconds": elapsed, "elapsed": clock(elapsed),
            "type": event.type, "actor": _who(event.actor), "text": describe(event.type, event.payload or {}),
            "payload": event.payload or {}}


def describe(type_: str, payload: dict) -> str:
    """A timeline event in words."""
    if type_ == "run.started":
        text = f"{str(payload.get('mode', '')).capitalize()} started: {payload.get('name')}"
        return text + (f" ({payload['location']})" if payload.get("location") else "")
    if type_ == "run.action_changed":
        return f"Action changed to {payload.get('name')}"
    if type_ == "run.updated":
        return f"Update: {payload.get('message', '')}"
    if type_ == "run.ended":
        text = _END_WORDS.get(payload.get("reason"), "Ended")
        return text + (f": {payload['message']}" if payload.get("message") else "")
    if type_ == "run.facts_recorded":
        facts = payload.get("facts") or {}
        return "Drill facts recorded: " + ", ".join(f"{k} = {_word(v)}" for k, v in facts.items())
    if type_ == "alert.failed":
        reason = payload.get("reason") or payload.get("status")
        return f"Alert to {payload.get('recipient')} ({payload.get('channel')}) not delivered: {reason}"
    if type_ == "alert.unreachable":
        return f"{payload.get('count')} recipient(s) cannot be reached: {payload.get('reason')}"
    if type_ == "ack.recorded":
        return f"{payload.get('name')} acknowledged by {payload.get('channel')}"
    if type_ == "checkin.recorded":
        room = (payload.get("room") or {}).get("label") or (payload.get("room") or {}).get("number")
        counts = ", ".join(f"{name} {payload[name]}" for name in ("present", "missing", "injured", "extra")
                           if payload.get(name))
        return f"Room {room}: {str(payload.get('status', '')).replace('_', ' ')}" + (f" ({counts})" if counts else "")
    scalars = [f"{k} = {_word(v)}" for k, v in payload.items() if isinstance(v, str | int | float | bool)]
    return type_.replace(".", " ").replace("_", " ").capitalize() + (": " + ", ".join(scalars) if scalars else "")


def _word(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "" if value is None else str(value)


def notes_of(run: Run, events: list[RunEvent]) -> list[dict]:
    """What people wrote: the note at the start, every update, the closing message."""
    notes = []
    if run.note:
        notes.append({"at": iso(run.started_at), "local_time": _local(run, run.started_at, "%H:%M:%S"),
                      "by": _who(run.started_by), "kind": "note", "message": run.note})
    for event in events:
        if event.type == "run.updated" and (event.payload or {}).get("message"):
            notes.append({"at": iso(event.created_at), "local_time": _local(run, event.created_at, "%H:%M:%S"),
                          "by": _who(event.actor), "kind": "update", "message": event.payload["message"]})
    if run.end_message:
        notes.append({"at": iso(run.ended_at), "local_time": _local(run, run.ended_at, "%H:%M:%S"),
                      "by": _who(run.ended_by), "kind": run.end_reason or "end", "message": run.end_message})
    return notes


# --- alerts ----------------------------------------------------------------------------------

def ack_figures(session: Session, run: Run) -> dict:
    """Acknowledgement statistics of the run (emergency.alerts.acks)."""
    return ack_stats(session, run)


def ack_rate(session: Session, run: Run) -> dict:
    """Recipients asked to acknowledge, how many of them did, and the rate."""
    tally = ack_tally(session, run.id)
    return {"alerted": tally["asked"], "acknowledged": tally["acknowledged"], "rate": tally["rate"]}


def alert_figures(session: Session, run: Run) -> dict:
    """Sent, delivered, failed and acknowledged counts, and how fast people acknowledged."""
    alerts = list(session.execute(select(Alert.status, Alert.sent_at).where(Alert.run_id == run.id)))
    stats = ack_figures(session, run)
    rate = ack_rate(session, run)
    by = delivery_summary(session, run.id)
    return {
        "total": len(alerts),
        "recipients": by["recipients"],
        "sent": sum(1 for status, sent_at in alerts if sent_at is not None),
        "delivered": sum(1 for status, _ in alerts if status in _DELIVERED),
        "failed": sum(1 for status, _ in alerts if status in NOT_REACHED),
        "pending": sum(1 for status, _ in alerts if status in (QUEUED, SENDING)),
        "cancelled": sum(1 for status, _ in alerts if status == CANCELLED),
        "by_channel": by["by_channel"],
        "acknowledged": rate["acknowledged"],
        "asked_to_acknowledge": rate["alerted"],
        "ack_rate": rate["rate"],
        "median_ack_seconds": stats["median_seconds"],
        "p90_ack_seconds": stats["p90_seconds"],
        "acknowledgements": [
            {key: ack.get(key) for key in ("kind", "name", "role", "channel", "acknowledged_at", "seconds")}
            for ack in stats.get("acknowledgements", [])],
    }


def unreachable_recipients(session: Session, run: Run) -> list[dict]:
    """People and partners whose start alert reached them on no phone channel, and who never acknowledged."""
    rows = session.execute(select(Alert).where(Alert.run_id == run.id, Alert.occasion == "start",
                                               Alert.channel.in_(("sms", "voice")))
                           .order_by(Alert.recipient_name, Alert.id)).scalars()
    acked = {(a.person_id, a.partner_id) for a in session.scalars(
        select(Acknowledgement).where(Acknowledgement.run_id == run.id))}
    recipients: dict[tuple, dict] = {}
    for alert in rows:
        key = (alert.person_id, alert.partner_id)
        entry = recipients.setdefault(key, {"kind": alert.recipient_kind, "name": alert.recipient_name,
                                            "role": alert.recipient_role, "channels": [], "reasons": [],
                                            "reached": False})
        entry["channels"].append(f"{alert.channel}: {alert.status}")
        if alert.status in NOT_REACHED:
            reason = alert.error_message or alert.status.replace("_", " ")
            if reason not in entry["reasons"]:
                entry["reasons"].append(reason)
        else:
            entry["reached"] = True  # delivered, or still on its way: not (yet) unreachable
    return [{k: v for k, v in entry.items() if k != "reached"} for key, entry in recipients.items()
            if not entry["reached"] and key not in acked]


# --- accountability --------------------------------------------------------------------------

def accountability_of(session: Session, run: Run) -> dict:
    """Each room's check-in, the curve of rooms reported over time and the times to 50/90/100%."""
    required = bool((run.playbook.get("accountability") or {}).get("required"))
    counts = counts_for_run(session, run)
    figures = accountability_figures(session, run)
    rooms = []
    rows = session.execute(select(RoomStatus, Checkin, Room).join(Checkin, Checkin.id == RoomStatus.checkin_id)
                           .join(Room, Room.id == RoomStatus.room_id).where(RoomStatus.run_id == run.id)
                           .order_by(Room.number))
    for status, checkin, room in rows:
        seconds = round((status.first_reported_at - run.started_at).total_seconds(), 3)
        rooms.append({"room": room.label, "number": room.number, "status": status.status,
                      "checked_in_at": iso(status.first_reported_at),
                      "checked_in_local": _local(run, status.first_reported_at, "%H:%M:%S"),
                      "seconds_to_check_in": seconds,
                      "elapsed": clock(seconds), "last_report_at": iso(status.reported_at),
                      "reports": status.reports, **{name: getattr(status, name) for name in COUNT_FIELDS},
                      "location": checkin.location, "reporter": checkin.reporter_name})
    for room in unreported_rooms(session, run):
        rooms.append({"room": room.label, "number": room.number, "status": "not_reported", "checked_in_at": None,
                      "checked_in_local": None, "seconds_to_check_in": None, "elapsed": "", "last_report_at": None,
                      "reports": 0,
                      **{name: None for name in COUNT_FIELDS}, "location": None, "reporter": None})
    reported = [room for room in rooms if room["reports"]]
    return {
        "available": True, "required": required, "expected": counts["expected"], "reported": counts["reported"],
        "percent": counts["percent"], "figures": figures, "curve": curve(session, run),
        "rooms": rooms, "totals": {name: counts[name] for name in COUNT_FIELDS},
        "note": None if reported else NO_CHECKINS,
    }


# --- CSV -------------------------------------------------------------------------------------

def _cell(value: object) -> object:
    # A spreadsheet runs a cell starting with = + - @ as a formula; free text typed by staff must not.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def report_csv(report: dict) -> str:
    """The timeline rows, then one row per room; the `section` column tells them apart."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in report["timeline"]:
        actor = row.get("actor") or {}
        writer.writerow({k: _cell(v) for k, v in {
            "section": "timeline", "seq": row["seq"], "at": row["at"], "local_time": row["local_time"],
            "elapsed": row["elapsed"],
            "elapsed_seconds": row["elapsed_seconds"], "type": row["type"], "actor": actor.get("name"),
            "text": row["text"]}.items()})
    for room in report["accountability"]["rooms"]:
        row = {"section": "room", **room, "local_time": room["checked_in_local"]}
        writer.writerow({k: _cell(v) for k, v in row.items() if k in CSV_COLUMNS})
    return out.getvalue()


# --- HTML ------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 680, 260
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 52, 16, 14, 40
_TICK_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)


def chart(report: dict) -> dict:
    """The accountability curve (and the acknowledgement curve) as SVG coordinates, in percent over time."""
    accountability, alerts = report["accountability"], report["alerts"]
    series = []
    if accountability["expected"]:
        series.append(("Rooms reported", "rooms", [
            (point["seconds"], 100.0 * point["reported"] / accountability["expected"])
            for point in accountability["curve"] if point.get("seconds") is not None]))
    if alerts["asked_to_acknowledge"]:
        ordered = sorted(ack["seconds"] for ack in alerts["acknowledgements"] if ack.get("seconds") is not None)
        series.append(("Alerts acknowledged", "acks", [
            (seconds, 100.0 * n / alerts["asked_to_acknowledge"]) for n, seconds in enumerate(ordered, start=1)]))
    last = max([t for _, _, points in series for t, _ in points] + [report["summary"]["duration_seconds"] or 0, 60])
    step = next((s for s in _TICK_STEPS if last / s <= 8), _TICK_STEPS[-1])
    x_max = math.ceil(last / step) * step
    width = CHART_WIDTH - _PAD_LEFT - _PAD_RIGHT
    height = CHART_HEIGHT - _PAD_TOP - _PAD_BOTTOM

    def x(seconds: float) -> float:
        return round(_PAD_LEFT + width * seconds / x_max, 1)

    def y(percent: float) -> float:
        return round(_PAD_TOP + height * (1 - min(percent, 100.0) / 100), 1)

    lines = []
    for label, css, points in series:
        coords, level = [(x(0), y(0))], 0.0
        for seconds, percent in sorted(points):
            coords += [(x(seconds), y(level)), (x(seconds), y(percent))]
            level = percent
        coords.append((x(last), y(level)))
        lines.append({"label": label, "css": css, "points": " ".join(f"{a},{b}" for a, b in coords),
                      "final": round(min(level, 100.0))})
    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "left": _PAD_LEFT, "top": _PAD_TOP,
        "right": CHART_WIDTH - _PAD_RIGHT, "bottom": CHART_HEIGHT - _PAD_BOTTOM,
        "x_ticks": [{"x": x(t), "label": clock(t)} for t in range(0, x_max + 1, step)],
        "y_ticks": [{"y": y(p), "label": f"{p}%"} for p in (0, 25, 50, 75, 100)],
        "series": lines, "empty": not any(points for _, _, points in series),
    }


def report_html(report: dict) -> str:
    """A self-contained printable page (inline CSS and SVG, no external assets)."""
    return render_template("compliance/after_action.html", report=report, chart=chart(report), clock=clock,
                           word=_word)


# --- trends ----------------------------------------------------------------------------------

def trends_for(session: Session, principal: Principal, ruleset: RuleSet, *, school_id: int | None,
               year: int | None = None, today: date | None = None) -> dict:
    """Drill by drill across a school year: time to full accountability and the acknowledgement rate."""
    schools, year, first, last = year_scope(session, principal, ruleset, school_id=school_id, year=year, today=today)
    rows = [trend_row(session, drill.run, drill) for drill in drill_log(session, schools, first, last)
            if drill.run is not None]
    per_school = []
    for school in schools:
        mine = [row for row in rows if row["school"]["id"] == school.id]
        if mine:
            half = (len(mine) + 1) // 2
            per_school.append({"school": {"id": school.id, "code": school.code, "name": school.name},
                               "drills": len(mine), "earlier": _averages(mine[:half]),
                               "later": _averages(mine[half:])})
    return {"year": year, "school_year": {"start": first.isoformat(), "end": last.isoformat()},
            "drills": rows, "schools": per_school}


def trend_row(session: Session, run: Run, drill) -> dict:
    """One drill's figures for the trend."""
    rate = ack_rate(session, run)
    seconds_to_full = accountability_figures(session, run).get("seconds_to_100_percent")
    return {
        "run_id": run.id, "school": {"id": drill.school.id, "code": drill.school.code, "name": drill.school.name},
        "date": drill.record.day.isoformat(), "time": drill.record.held_at.strftime("%H:%M"),
        "category": drill.record.category, "playbook": run.playbook.get("name"),
        "duration_seconds": drill.record.duration_seconds,
        "seconds_to_full_accountability": seconds_to_full,
        "recipients_alerted": rate["alerted"], "recipients_acknowledged": rate["acknowledged"],
        "ack_rate": rate["rate"],
    }


def _averages(rows: list[dict]) -> dict:
    def mean(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(sum(values) / len(values), 3) if values else None

    return {"drills": len(rows), "ack_rate": mean("ack_rate"),
            "seconds_to_full_accountability": mean("seconds_to_full_accountability")}
