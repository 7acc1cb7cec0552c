"""The privacy purge: student names and free text leave ended runs once they are old enough.

One module owns it because it reaches into three packages' rows: check-ins and staff notes
(accountability), inbound SMS bodies (alerts), per-student statuses and expected lists (roster).
Counts always stay, so drill records and after-action figures keep working.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, null, or_, select, update
from sqlalchemy.orm import Session

from emergency.accountability.models import Checkin, StaffStatus
from emergency.alerts.models import InboundMessage
from emergency.errors import ValidationFailed
from emergency.roster.models import RunRoster, StudentStatus
from emergency.runs.models import ACTIVE, Run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)


def purge_student_data(session: Session, older_than_days: int) -> dict:
    """Replace student names (and free-text notes) with counts in runs ended more than N days ago.

    Also deletes those runs' student-level statuses and expected lists, and clears inbound SMS
    bodies older than that. Flushes; the caller commits.
    """
    if older_than_days < 0:
        raise ValidationFailed("--older-than must be 0 or more days.")
    now = utcnow()
    cutoff = now - timedelta(days=older_than_days)
    ended = select(Run.id).where(Run.state != ACTIVE, Run.ended_at.is_not(None), Run.ended_at < cutoff)
    checkins = session.execute(
        update(Checkin).where(Checkin.run_id.in_(ended), or_(Checkin.missing_students.is_not(None),
                                                             Checkin.injured_students.is_not(None),
                                                             Checkin.note.is_not(None)))
        .values(missing_students=null(), injured_students=null(), note=None, names_purged_at=now)
        .execution_options(synchronize_session=False)).rowcount
    notes = session.execute(update(StaffStatus).where(StaffStatus.run_id.in_(ended), StaffStatus.note.is_not(None))
                            .values(note=None).execution_options(synchronize_session=False)).rowcount
    messages = session.execute(update(InboundMessage).where(InboundMessage.received_at < cutoff,
                                                            InboundMessage.body != "")
                               .values(body="").execution_options(synchronize_session=False)).rowcount
    statuses = session.execute(delete(StudentStatus).where(StudentStatus.run_id.in_(ended))
                               .execution_options(synchronize_session=False)).rowcount
    expected = session.execute(delete(RunRoster).where(RunRoster.run_id.in_(ended))
                               .execution_options(synchronize_session=False)).rowcount
    log.info("privacy purge: %s check-ins, %s staff notes, %s inbound messages, %s student statuses and %s "
             "expected-student rows older than %s days", checkins, notes, messages, statuses, expected,
             older_than_days)
    return {"checkins": checkins, "staff_notes": notes, "inbound_messages": messages,
            "student_statuses": statuses, "expected_students": expected, "cutoff": iso(cutoff)}
