"""Fan-out: rules become one alert per recipient per channel, in the run's own transaction."""

import pytest
from sqlalchemy import func, select

from emergency.alerts import fanout
from emergency.alerts.models import CANCELLED, QUEUED, UNREACHABLE, Alert
from emergency.playbooks.templates import DRILL_BANNER
from emergency.runs.models import Run


@pytest.fixture
def school(make_school, make_person, make_partner, make_room):
    school = make_school(name="Port Chester Middle School")
    make_person("school_admin", [school], name="Ada Admin")
    for n in range(4):
        make_person("teacher", [school], name=f"Teacher {n}")
    make_person("nurse", [school], name="Nora Nurse")
    make_person("teacher", [school], name="Phoneless Phil", mobile=None)
    make_person("district_admin", [], name="Dee District")
    make_partner([school], name="Officer Ortiz")
    return school


def _start(client, login, make_person, school, mode="drill", playbook="lockdown"):
    starter = make_person("school_admin", [school], name="Starter Sam")
    response = client.post("/api/v1/runs", headers=login(starter),
                           json={"school_id": school.id, "playbook": playbook, "mode": mode, "confirm": True})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _alerts(session, run_id, channel="sms"):
    return list(session.scalars(select(Alert).where(Alert.run_id == run_id, Alert.channel == channel)
                                .order_by(Alert.priority, Alert.id)))


def test_every_staff_member_gets_one_sms_with_the_drill_banner(client, login, make_person, school, session):
    run_id = _start(client, login, make_person, school)
    sms = [a for a in _alerts(session, run_id) if a.status == QUEUED]
    names = [a.recipient_name for a in sms]
    assert len(names) == len(set(names)), "someone got two messages"
    assert "Teacher 0" in names and "Nora Nurse" in names
    assert all(a.body.startswith(DRILL_BANNER) for a in sms)
    assert "Officer Ortiz" not in names, "a lockdown drill sends partners nothing"


def test_real_messages_never_carry_the_banner_and_reach_partners_first(client, login, make_person, school, session):
    run_id = _start(client, login, make_person, school, mode="real")
    sms = [a for a in _alerts(session, run_id) if a.status == QUEUED]
    assert not any("DRILL" in a.body for a in sms)
    order = [a.recipient_role for a in sms]
    assert order[0] == "partner"
    first_staff = next(i for i, role in enumerate(order) if role not in ("partner", "school_admin",
                                                                        "district_admin"))
    assert all(role in ("partner", "school_admin", "district_admin") for role in order[:first_staff])
    assert "partner" not in order[first_staff:] and "school_admin" not in order[first_staff:]


def test_people_without_a_mobile_are_listed_as_unreachable(client, login, make_person, school, session):
    run_id = _start(client, login, make_person, school)
    unreachable = [a for a in _alerts(session, run_id) if a.status == UNREACHABLE]
    assert [a.recipient_name for a in unreachable] == ["Phoneless Phil"]
    events = client.get(f"/api/v1/runs/{run_id}/timeline",
                        headers=login(make_person("school_admin", [school]))).get_json()["events"]
    event = next(e for e in events if e["type"] == "alert.unreachable")
    assert event["payload"]["recipients"] == [{"name": "Phoneless Phil", "role": "teacher"}]


def test_person_in_two_audiences_gets_one_message(app, session, school, make_person):
    from emergency.playbooks.model import NotificationRule, Playbook

    playbook = app.extensions["playbooks"].get("lockdown")
    rule = playbook.notifications[0]
    doubled = Playbook.from_dict({**playbook.to_dict(), "notifications": [
        {**rule.to_dict(), "audience": ["all_staff"], "modes": ["drill", "real"], "channels": ["sms"]},
        {**rule.to_dict(), "audience": ["school_admins", "role:teacher"], "modes": ["drill", "real"],
         "channels": ["sms", "voice"]},
    ]})
    assert isinstance(doubled.notifications[0], NotificationRule)
    deliveries = fanout.plan(session, _fake_run(session, school, doubled), doubled)
    names = [d.recipient.name for d in deliveries]
    assert len(names) == len(set(names))
    teacher = next(d for d in deliveries if d.recipient.name == "Teacher 0")
    assert teacher.channels == ["sms", "voice"]


def _fake_run(session, school, playbook):
    from emergency.timeutil import utcnow

    run = Run(school_id=school.id, school=school, playbook_key=playbook.key, playbook_version="x",
              playbook=playbook.to_dict(), mode="drill", action=playbook.action, directive=playbook.directive,
              state="ended", started_by={"name": "t"}, started_at=utcnow(), last_seq=0, facts={})
    session.add(run)
    session.flush()
    return run


def test_alerts_commit_with_the_run_or_not_at_all(client, login, make_person, school, session, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fanout, "plan", broken)
    starter = login(make_person("school_admin", [school]))
    response = client.post("/api/v1/runs", headers=starter,
                           json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
    assert response.status_code == 500
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Run)) == 0
    assert session.scalar(select(func.count()).select_from(Alert)) == 0


def test_ending_a_run_cancels_unsent_alerts_but_sends_the_all_clear(client, login, make_person, school, session):
    admin = login(make_person("school_admin", [school]))
    run_id = client.post("/api/v1/runs", headers=admin,
                         json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"}).get_json()["id"]
    client.post(f"/api/v1/runs/{run_id}/all-clear", json={"message": "Drill over"}, headers=admin)
    session.rollback()
    start = [a for a in _alerts(session, run_id) if a.occasion == "start"]
    closing = [a for a in _alerts(session, run_id) if a.occasion == "all_clear"]
    assert start and all(a.status in (CANCELLED, UNREACHABLE) for a in start)
    assert closing and all(a.status in (QUEUED, UNREACHABLE) for a in closing)
    assert all(a.body.startswith(DRILL_BANNER) for a in closing)
    assert session.scalar(select(func.count()).select_from(Alert).where(
        Alert.run_id == run_id, Alert.escalate_at.is_not(None), Alert.escalated_at.is_(None))) == 0


def test_opted_out_recipient_is_called_and_the_call_carries_the_escalation_timer(client, login, make_person,
                                                                                 school, session):
    from emergency.alerts.models import SKIPPED
    from emergency.alerts.optouts import opt_out
    from emergency.directory.models import Person

    teacher = session.scalar(select(Person).where(Person.name == "Teacher 0"))
    opt_out(session, teacher.mobile)
    session.commit()
    run_id = _start(client, login, make_person, school)
    alerts = {a.channel: a for a in session.scalars(select(Alert).where(Alert.run_id == run_id,
                                                                        Alert.person_id == teacher.id))}
    assert alerts["sms"].status == SKIPPED
    assert alerts["voice"].status == QUEUED
    assert alerts["voice"].escalate_at is not None or alerts["push"].escalate_at is not None


def _alert_rows(run, now):
    base = {"run_id": run.id, "event_seq": 1, "occasion": "start", "person_id": None, "partner_id": None,
            "recipient_name": "Teacher 0", "recipient_role": "teacher", "to_number": "+19145550100",
            "priority": 2, "lane": 1, "turn": 0, "requires_ack": True, "escalate_after_seconds": 120,
            "queued_at": now, "next_attempt_at": now, "attempts": 0, "escalate_at": None, "escalated_at": None,
            "sent_at": None, "error_message": None, "subscription_id": None, "payload": None, "status": QUEUED}
    return [dict(base, channel="push", body="LOCKDOWN drill", payload={"run_id": run.id, "action": "Lockdown",
                                                                        "directive": "Locks, lights, out of sight"},
                 escalate_at=now),
            dict(base, channel="sms", body="DRILL: Lockdown. Reply 1 when safe. https://x.example/r/1",
                 requires_ack=False, escalate_after_seconds=None)]


def test_queued_rows_are_stored_as_given_in_the_runs_transaction(app, session, school, database_url):
    """A fan-out's rows go in with one COPY on PostgreSQL and one executemany on SQLite: the same
    values either way (UTC times, the push's JSON, a NULL for no payload), and gone on rollback."""
    from sqlalchemy import text

    from emergency.db import insert_rows
    from emergency.timeutil import utcnow

    run = _fake_run(session, school, app.extensions["playbooks"].get("lockdown"))
    now = utcnow()
    insert_rows(session, Alert.__table__, _alert_rows(run, now))
    push, sms = session.scalars(select(Alert).where(Alert.run_id == run.id).order_by(Alert.id)).all()
    assert (push.channel, push.status, push.requires_ack, push.escalate_after_seconds) == ("push", QUEUED, True, 120)
    assert push.payload == {"run_id": run.id, "action": "Lockdown", "directive": "Locks, lights, out of sight"}
    assert push.queued_at == now and push.escalate_at == now and push.queued_at.utcoffset().total_seconds() == 0
    assert (sms.body, sms.requires_ack, sms.escalate_after_seconds, sms.payload) == (
        "DRILL: Lockdown. Reply 1 when safe. https://x.example/r/1", False, None, None)
    if database_url.startswith("postgresql"):  # JSONType: SQL NULL there, as the executemany stored it
        assert session.scalar(text("SELECT count(*) FROM alerts WHERE payload IS NULL")) == 1, "no JSON 'null'"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Alert)) == 0


def test_rows_without_a_column_that_has_a_default_are_refused_before_anything_is_written(app, session, school):
    """COPY would not apply a Python-side default (an alert's status): such rows are refused on every
    backend, so that a test on SQLite finds what PostgreSQL would do."""
    from emergency.db import insert_rows
    from emergency.timeutil import utcnow

    run = _fake_run(session, school, app.extensions["playbooks"].get("lockdown"))
    rows = [{k: v for k, v in row.items() if k != "status"} for row in _alert_rows(run, utcnow())]
    with pytest.raises(ValueError, match="give status in the rows of alerts"):
        insert_rows(session, Alert.__table__, rows)
    assert session.scalar(select(func.count()).select_from(Alert)) == 0


def test_a_fan_out_on_postgresql_sends_no_insert_per_alert(client, login, make_person, school, app, database_url):
    """Starting a run for a school writes its alerts in one COPY on PostgreSQL (no INSERT statements
    for them) and in one executemany on SQLite."""
    from sqlalchemy import event

    inserts: list[bool] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO ALERTS"):
            inserts.append(executemany)

    engine = app.extensions["db"]["engine"]
    event.listen(engine, "before_cursor_execute", note)
    try:
        _start(client, login, make_person, school)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert inserts == ([] if database_url.startswith("postgresql") else [True])
