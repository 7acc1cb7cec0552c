"""Plain helpers shared by the alert tests (their fixtures are in tests/alerts/conftest.py)."""

from __future__ import annotations

from sqlalchemy import select

from emergency.alerts.models import Alert
from emergency.db import db
from emergency.directory.principal import Principal
from emergency.runs.models import Run, RunEvent
from emergency.runs.service import StartRequest, start_run
from tests.conftest import twilio_settings

SCHOOL = "Port Chester Middle School"
# The Twilio auth token of the default alert-test app, so that webhooks can be signed.
TOKEN = "test-auth-token"


def fake_twilio_settings(fake) -> dict:
    """App settings that send through `fake`, with its status callbacks off.

    The callbacks would go to http://testserver, which does not exist: tests post them instead.
    """
    fake.configure(callbacks=False)
    return {**twilio_settings(fake), "CALLS_PER_SECOND": 0.0, "SEND_TIMEOUT_SECONDS": 2.0}


def as_principal(person) -> Principal:
    return Principal(account_id=0, kind="person", id=person.id, name=person.name, role=person.role,
                     email=person.email, school_ids=None)


def start(app, who, school, *, mode: str = "drill", playbook: str = "lockdown") -> Run:
    request = StartRequest(school_id=school.id, playbook=playbook, mode=mode, confirm=True)
    run, _ = start_run(db.session, as_principal(who), request, app.extensions["playbooks"])
    db.session.commit()
    return run


def events(session, run, type_) -> list[RunEvent]:
    return list(session.scalars(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.type == type_)))


def alerts(session, run, **where) -> list[Alert]:
    """The run's alerts in id order, fresh from the database, filtered by column values."""
    query = select(Alert).where(Alert.run_id == run.id).order_by(Alert.id)
    for name, value in where.items():
        query = query.where(getattr(Alert, name) == value)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def alert_of(session, run, *, channel: str, person=None, partner=None) -> Alert:
    """The latest alert on `channel` to a person or a partner."""
    recipient = Alert.person_id == person.id if person else Alert.partner_id == partner.id
    return session.scalar(select(Alert).where(Alert.run_id == run.id, Alert.channel == channel, recipient)
                          .order_by(Alert.id.desc()))


class RecordingBudget:
    """A send budget that never waits and remembers every (key, rate) it was asked for."""

    name = "recording"

    def __init__(self):
        self.taken: list[tuple[str, float]] = []

    def acquire(self, key: str, rate: float) -> None:
        self.taken.append((key, rate))
