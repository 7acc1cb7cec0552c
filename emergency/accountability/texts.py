"""The texts accountability sends through the outbox: a call for help, and (reminders.py) reminders."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from emergency.accountability.rooms import Reporter
from emergency.alerts.models import QUEUED
from emergency.alerts.outbox import Outgoing, queue
from emergency.directory.models import Partner, Person
from emergency.directory.roles import DISTRICT_ADMIN, SCHOOL_ADMIN
from emergency.directory.service import partners_of, people_of
from emergency.playbooks.templates import help_text
from emergency.runs.models import Run

log = logging.getLogger(__name__)


HELP_PRIORITY = 0


def queue_texts(session: Session, run: Run, event_seq: int, occasion: str, recipients: list[Person | Partner],
                body: str, *, priority: int, voice_for_partners: bool = False, voice_fallback: bool = False) -> int:
    """Put one SMS (and a call where asked) per recipient in the outbox; returns how many were queued.

    `voice_for_partners`: partners get a call too; `voice_fallback`: whoever replied STOP gets a call instead.
    """
    outgoing = [Outgoing.to(recipient, ["sms", "voice"] if voice_for_partners and isinstance(recipient, Partner)
                            else ["sms"], body, priority=priority, call_if_opted_out=voice_fallback)
                for recipient in recipients]
    return sum(1 for row in queue(session, run, event_seq, occasion, outgoing) if row["status"] == QUEUED)


def school_admins(session: Session, run: Run) -> list[Person]:
    """The school's admins; the district admins when the school has none."""
    admins = [p for p in people_of(session, run.school_id, include_district=False) if p.role == SCHOOL_ADMIN]
    return admins or [p for p in people_of(session, run.school_id) if p.role == DISTRICT_ADMIN]


def alert_help(session: Session, run: Run, person: Reporter, event_seq: int, *, room_label: str | None,
               exclude_person_id: int | None = None) -> int:
    """Urgent SMS to the school's admins (and SMS + call to partners in a real run): someone needs help."""
    body = help_text(run.mode, person.name, room_label, run.school.name)
    recipients: list[Person | Partner] = [p for p in school_admins(session, run) if p.id != exclude_person_id]
    if run.mode == "real":
        recipients.extend(partners_of(session, run.school_id))
    return queue_texts(session, run, event_seq, "help", recipients, body, priority=HELP_PRIORITY,
                       voice_for_partners=True, voice_fallback=True)
