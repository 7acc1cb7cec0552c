"""SMS check-ins and calls for help: what the inbound-SMS webhook hands over, and the reply to send.

Replies never echo what the sender typed beyond the matched room number: a teacher may type a
student's name, and the reply goes back out as an SMS.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from emergency.accountability import checkins, rooms, staff
from emergency.accountability.models import ALL_ACCOUNTED, NEED_HELP, STUDENTS_MISSING
from emergency.directory.models import Partner, Person, Room
from emergency.errors import DomainError
from emergency.runs.models import ACTIVE, Run
from emergency.sms.grammar import HELP_TEXT, CheckinReport, describe
from emergency.sms.replies import Reply

log = logging.getLogger(__name__)

NO_RUN = "No drill or emergency is active at your school. Nothing was recorded."
HELP_SENT = "Recorded: you need help. Your school's admins have been alerted. Stay where you are safe."


def handle(session: Session, sender: Person | Partner, reply: Reply, run: Run | None) -> str | None:
    """Record an SMS check-in or call for help from `sender` in `run`; returns the reply text, or None."""
    if reply.kind not in ("checkin", "help_me"):
        return None
    if isinstance(sender, Partner):
        return None  # partners report to their own dispatch, not through staff check-ins
    if run is None:
        return NO_RUN
    if not rooms.is_staff_of(session, sender, run.school_id):
        return f"You are not on the staff of {run.school.name}."
    if reply.kind == "help_me":
        staff.record_staff_status(session, run, sender, NEED_HELP, channel="sms")
        log.info("sms call for help from person %s in run %s", sender.id, run.id)
        return HELP_SENT
    if reply.checkin is None:
        return f"Not recorded: {reply.error or 'not a check-in'}. {HELP_TEXT}"
    return _check_in(session, run, sender, reply.checkin)


def _check_in(session: Session, run: Run, sender: Person, report: CheckinReport) -> str:
    wanted = report.room.casefold()
    room = session.scalar(select(Room).where(Room.school_id == run.school_id, or_(
        func.lower(Room.number) == wanted, func.lower(Room.name) == wanted)).order_by(Room.number).limit(1))
    if room is None:
        # The typed room is not echoed: it may be a word the teacher meant as something else.
        return f"Not recorded: that room is not a room of {run.school.name}. {HELP_TEXT}"
    request = checkins.CheckinRequest(
        status=STUDENTS_MISSING if report.missing else ALL_ACCOUNTED, room_id=room.id, present=report.present,
        absent=report.absent, missing=report.missing, injured=report.injured, extra=report.extra,
        # A text is typed on purpose: "IN 204 P0" says the room is empty.
        room_empty=not (report.present or report.missing or report.injured or report.extra))
    try:
        checkin, _ = checkins.record_checkin(session, run, sender, request, channel="sms")
    except DomainError as exc:
        # Refused before anything was written: the caller's transaction (the inbound message) stands.
        return f"Not recorded: {exc.message}"
    recorded = CheckinReport(room=room.number, present=checkin.present, missing=checkin.missing,
                             injured=checkin.injured, extra=checkin.extra, absent=checkin.absent)
    prefix = "Recorded (late)" if checkin.late or run.state != ACTIVE else "Recorded"
    return f"{prefix}: {describe(recorded)}"
