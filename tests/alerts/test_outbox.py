"""The outbox: the one place alert rows are made, and the rules every alert follows."""

from sqlalchemy import select

from emergency.alerts import outbox
from emergency.alerts.models import QUEUED, SKIPPED, UNREACHABLE, Alert, OptOut
from emergency.db import db
from emergency.timeutil import utcnow
from tests.alerts.helpers import start


def _queued(session, run, outgoing):
    outbox.queue(session, run, 1, "help", outgoing)
    session.flush()
    return {(a.recipient_name, a.channel): a for a in session.scalars(
        select(Alert).where(Alert.run_id == run.id, Alert.occasion == "help"))}


def test_opted_out_of_sms_is_called_instead_unless_the_producer_says_not_to(app, school, principal, make_person):
    run = start(app, principal, school)
    stopped = make_person("teacher", [school], name="Stopped Sue")
    also_stopped = make_person("teacher", [school], name="Stopped Stu")
    session = db.session
    session.add_all([OptOut(number=stopped.mobile, keyword="STOP", opted_out_at=utcnow()),
                     OptOut(number=also_stopped.mobile, keyword="STOP", opted_out_at=utcnow())])
    rows = _queued(session, run, [outbox.Outgoing.to(stopped, ["sms"], "URGENT"),
                                  outbox.Outgoing.to(also_stopped, ["sms"], "Reminder", call_if_opted_out=False)])
    assert rows[("Stopped Sue", "sms")].status == SKIPPED
    assert rows[("Stopped Sue", "sms")].error_message == outbox.CALLING_INSTEAD
    assert rows[("Stopped Sue", "voice")].status == QUEUED and rows[("Stopped Sue", "voice")].body == "URGENT"
    assert rows[("Stopped Stu", "sms")].status == SKIPPED and ("Stopped Stu", "voice") not in rows


def test_no_number_is_unreachable_and_the_timer_starts_on_what_can_be_answered(app, school, principal, make_person):
    run = start(app, principal, school)
    phoneless = make_person("teacher", [school], name="Phoneless Pat", mobile=None)
    texted = make_person("teacher", [school], name="Texted Tia")
    rows = _queued(db.session, run, [
        outbox.Outgoing.to(phoneless, ["push", "sms"], "LOCKDOWN", requires_ack=True, escalate_after=60),
        outbox.Outgoing.to(texted, ["sms", "voice"], "LOCKDOWN", requires_ack=True, escalate_after=60)])
    assert rows[("Phoneless Pat", "sms")].status == UNREACHABLE
    assert rows[("Phoneless Pat", "push")].escalate_at is not None  # the push can still be acknowledged
    assert rows[("Texted Tia", "sms")].escalate_at is not None
    assert rows[("Texted Tia", "voice")].escalate_at is None
