"""Accepted sends are recorded together (alerts.recording): one transaction for a batch of answers."""

from __future__ import annotations

import pytest
from sqlalchemy import event, update
from sqlalchemy.exc import OperationalError

from emergency.alerts.models import DELIVERED, SENDING, Alert
from emergency.db import db
from emergency.timeutil import utcnow
from tests.alerts.helpers import alerts, fake_twilio_settings, start


@pytest.fixture
def app_overrides(fake_twilio):
    return fake_twilio_settings(fake_twilio)


@pytest.fixture
def claimed(app, make_school, make_person):
    """A drill at a school of 6 teachers, its texts claimed by the app's dispatcher (not sent yet)."""
    school = make_school(name="North Elementary")
    admin = make_person("school_admin", [school])
    for n in range(6):
        make_person("teacher", [school], name=f"Teacher {n}")
    run = start(app, admin, school)
    db.session.commit()  # no read transaction left open: on SQLite it would hold up the dispatcher's writes
    dispatcher = app.extensions["dispatcher"]
    return dispatcher, run, dispatcher.claim("sms", limit=7)


def _statements(app):
    """Count the statements the app's engine runs (BEGIN and COMMIT are not statements here)."""
    seen: list[str] = []
    engine = app.extensions["db"]["engine"]

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: event.remove(engine, "before_cursor_execute", note)


def test_answers_noted_by_the_send_threads_are_recorded_in_one_transaction(app, session, claimed):
    dispatcher, run, texts = claimed
    answers = ["queued", "delivered", "sent", "queued", "Delivered ", "accepted"]
    for text, answer in zip(texts, answers, strict=False):
        dispatcher.accepted.note(text.id, f"SM{text.id:032d}", answer)
    seen, stop = _statements(app)
    try:
        dispatcher.record_accepted()
    finally:
        stop()

    # One read of which are still sending, then one UPDATE for each status reached (sent, delivered).
    assert seen.count("SELECT") == 1 and seen.count("UPDATE") == 2, seen
    rows = {a.id: a for a in alerts(session, run)}
    for text, answer in zip(texts, answers, strict=False):
        alert = rows[text.id]
        reached = "delivered" if answer.strip().lower() == "delivered" else "sent"
        assert (alert.status, alert.provider_status, alert.provider_sid) == (
            reached, answer.strip().lower(), f"SM{text.id:032d}")
        assert alert.sent_at is not None and alert.deadline_at is None
        assert (alert.delivered_at is not None) == (reached == "delivered")
        assert (alert.finished_at is not None) == (reached == "delivered")
    untouched = [rows[t.id] for t in texts[len(answers):]]
    assert all(a.status == SENDING and a.sent_at is None for a in untouched), "not answered yet: still claimed"


def test_answers_without_a_sid_are_recorded_in_one_update_by_id(app, session, claimed):
    """The push service gives no id for a push: a fan-out's pushes are one UPDATE ... IN, not one each."""
    dispatcher, run, texts = claimed
    for text in texts:
        dispatcher.accepted.note(text.id, None, "sent")
    seen, stop = _statements(app)
    try:
        dispatcher.record_accepted()
    finally:
        stop()
    assert [s for s in seen if s != "BEGIN"] == ["SELECT", "UPDATE"]  # SQLite's BEGIN IMMEDIATE is a statement
    recorded = alerts(session, run, channel="sms")
    assert {(a.status, a.provider_status, a.provider_sid) for a in recorded} == {("sent", "sent", None)}
    assert all(a.sent_at is not None and a.deadline_at is None for a in recorded)


def test_nothing_noted_opens_no_transaction(app, claimed):
    dispatcher, _, _ = claimed
    seen, stop = _statements(app)
    try:
        dispatcher.record_accepted()
    finally:
        stop()
    assert seen == []


def test_an_alert_a_callback_moved_on_first_is_recorded_on_its_own_and_keeps_what_the_callback_said(
        app, session, claimed):
    dispatcher, run, texts = claimed
    first, second = texts[:2]
    session.execute(update(Alert).where(Alert.id == second.id).values(status=DELIVERED, provider_status="delivered",
                                                                      delivered_at=utcnow()))
    session.commit()
    dispatcher.accepted.note(first.id, "SM-first", "queued")
    dispatcher.accepted.note(second.id, "SM-second", "queued")

    left = dispatcher.accepted.flush()

    assert [a.alert_id for a in left] == [second.id], "only the one the callback reached is left over"
    dispatcher._settle(second.id, "SM-second", "queued")
    rows = {a.id: a for a in alerts(session, run)}
    assert (rows[first.id].status, rows[first.id].provider_sid) == ("sent", "SM-first")
    assert (rows[second.id].status, rows[second.id].provider_sid) == ("delivered", "SM-second")
    assert rows[second.id].sent_at is not None


def test_an_answer_that_is_not_a_plain_success_is_left_to_be_recorded_on_its_own(app, session, claimed):
    dispatcher, run, texts = claimed
    dispatcher.accepted.note(texts[0].id, "SM-odd", "failed")
    dispatcher.accepted.note(texts[1].id, "SM-plain", "queued")

    left = dispatcher.accepted.flush()

    assert [(a.alert_id, a.provider_status) for a in left] == [(texts[0].id, "failed")]
    dispatcher.record_accepted()  # nothing left noted: a no-op
    rows = {a.id: a for a in alerts(session, run)}
    assert rows[texts[0].id].status == SENDING and rows[texts[1].id].status == "sent"


def test_the_texts_of_a_drill_are_recorded_with_what_the_provider_said(app, session, claimed, fake_twilio):
    """Sent for real through the fake Twilio: every text ends `sent` with its SID, no claim left."""
    dispatcher, run, texts = claimed
    for text in texts:
        dispatcher._send_one(text)
    assert all(a.status == SENDING for a in alerts(session, run, channel="sms")), \
        "noted, not recorded yet"
    session.rollback()  # on SQLite the read holds the write lock until it ends
    dispatcher.record_accepted()
    recorded = alerts(session, run, channel="sms")
    assert {a.status for a in recorded} == {"sent"}
    assert all(a.provider_sid and a.provider_sid.startswith("SM") and a.deadline_at is None for a in recorded)


def test_answers_the_database_did_not_take_are_kept_for_the_next_flush(app, session, claimed, monkeypatch):
    """A dropped connection while recording must not leave the texts `sending`: their claims would
    lapse and every one of them would be sent again."""
    dispatcher, run, texts = claimed
    for text in texts[:3]:
        dispatcher.accepted.note(text.id, f"SM{text.id:032d}", "queued")
    record = dispatcher.accepted._record

    def dropped(plain):
        raise OperationalError("UPDATE alerts ...", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(dispatcher.accepted, "_record", dropped)
    with pytest.raises(OperationalError):
        dispatcher.record_accepted()
    monkeypatch.setattr(dispatcher.accepted, "_record", record)
    dispatcher.accepted.note(texts[3].id, f"SM{texts[3].id:032d}", "queued")  # answered meanwhile

    dispatcher.record_accepted()

    rows = {a.id: a for a in alerts(session, run)}
    assert [rows[t.id].provider_sid for t in texts[:4]] == [f"SM{t.id:032d}" for t in texts[:4]]
    assert {rows[t.id].status for t in texts[:4]} == {"sent"}
