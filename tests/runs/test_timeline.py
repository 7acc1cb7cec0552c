"""The timeline is the audit trail: append-only and ordered (what partners see: test_partner_view.py)."""

import pytest
from sqlalchemy import delete, update

from emergency.runs.models import RunEvent, TimelineIsAppendOnly


def _started_run(client, school_setup, start):
    headers = school_setup.login(school_setup.principal)
    return start(headers, school_setup.school).get_json()["id"]


def test_timeline_events_cannot_be_updated(client, school_setup, start, session):
    run_id = _started_run(client, school_setup, start)
    event = session.query(RunEvent).filter_by(run_id=run_id, seq=1).one()
    event.type = "tampered"
    with pytest.raises(TimelineIsAppendOnly):
        session.flush()
    session.rollback()


def test_timeline_events_cannot_be_deleted(client, school_setup, start, session):
    run_id = _started_run(client, school_setup, start)
    event = session.query(RunEvent).filter_by(run_id=run_id, seq=1).one()
    session.delete(event)
    with pytest.raises(TimelineIsAppendOnly):
        session.flush()
    session.rollback()


def test_bulk_update_and_delete_of_events_are_refused(client, school_setup, start, session):
    run_id = _started_run(client, school_setup, start)
    with pytest.raises(TimelineIsAppendOnly):
        session.execute(update(RunEvent).where(RunEvent.run_id == run_id).values(type="x"))
    with pytest.raises(TimelineIsAppendOnly):
        session.execute(delete(RunEvent).where(RunEvent.run_id == run_id))
    session.rollback()
    assert session.query(RunEvent).filter_by(run_id=run_id).count() >= 1


def test_every_event_has_actor_time_type_payload_and_growing_seq(client, school_setup, start):
    headers = school_setup.login(school_setup.principal)
    run_id = start(headers, school_setup.school).get_json()["id"]
    client.post(f"/api/v1/runs/{run_id}/updates", json={"message": "hello"}, headers=headers)
    client.post(f"/api/v1/runs/{run_id}/all-clear", json={}, headers=headers)
    events = client.get(f"/api/v1/runs/{run_id}/timeline", headers=headers).get_json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and "run.updated" in types and types[-1] == "run.ended"
    for event in events:
        assert event["actor"]["kind"] in ("person", "partner", "system", "sms")
        assert event["at"]
