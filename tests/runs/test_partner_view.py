"""Partners see what emergency/runs/partners.py lists, and nothing else: live events, API answers, reports."""

from __future__ import annotations

import marshmallow as ma

from emergency.runs import partners
from emergency.runs.partners import (
    PAYLOADS,
    PartnerEventSchema,
    PartnerLiveEventSchema,
    PartnerReportSchema,
    PartnerRunSchema,
    live_event_for_partner,
    payload_for_partner,
)

LEAKS = ("mobile", "email", "phone", "to_number", "missing_students", "injured_students", "students", "body",
         "note_private", "number_private")
NAMED = {"status": "students_missing", "present": 20, "missing": 1, "injured": 1,
         "missing_students": ["Zed Zebra"], "injured_students": ["Yan Yak"], "note": "Zed Zebra left with Yan Yak"}


def _names(schema: type[ma.Schema] | ma.Schema) -> set[str]:
    schema = schema() if isinstance(schema, type) else schema
    return {field.data_key or name for name, field in schema.fields.items()}


def _allowed(schema, data: dict) -> set[str]:
    """The keys a partner copy of `data` must have: those the schema lists, of those `data` has."""
    return _names(schema) & set(data)


def _no_leak(value, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert key not in LEAKS, f"{key} reached a partner in {where}"
            _no_leak(item, where)
    elif isinstance(value, list):
        for item in value:
            _no_leak(item, where)
    else:
        assert "Zed" not in str(value) and "Yan" not in str(value), where


def test_a_field_nobody_listed_stays_hidden_from_partners():
    payload = {"message": "Suspect seen near the gym", "mobile": "+12125550100", "new_field": "anything"}
    assert payload_for_partner("run.updated", payload) == {"message": "Suspect seen near the gym"}


def test_an_event_type_nobody_listed_reaches_partners_with_an_empty_payload():
    envelope = {"run_id": 1, "school_id": 2, "mode": "real", "seq": 3, "type": "something.new", "at": "t",
                "payload": {"name": "Ann", "count": 1}, "secret": "x"}
    assert live_event_for_partner(envelope) == {"run_id": 1, "school_id": 2, "mode": "real", "seq": 3,
                                                "type": "something.new", "at": "t", "payload": {}}


def test_contacts_nested_in_a_listed_payload_are_dropped():
    payload = {"person": {"id": 1, "name": "Tess", "role": "teacher", "mobile": "+12125550100"},
               "status": "safe", "room": None, "location": None, "channel": "app", "has_note": False}
    assert payload_for_partner("staff.status", payload)["person"] == {"id": 1, "name": "Tess", "role": "teacher"}


def test_partners_live_events_and_answers_hold_exactly_the_allowlisted_fields(
        client, school_setup, start, pushes):
    s = school_setup
    principal, teacher, partner = s.login(s.principal), s.login(s.teacher), s.login(s.partner)
    run_id = start(principal, s.school, mode="real", note="Intruder near the gym").get_json()["id"]
    client.post(f"/api/v1/runs/{run_id}/updates", json={"message": "Police on site"}, headers=principal)
    client.post(f"/api/v1/runs/{run_id}/ack", json={}, headers=teacher)
    client.post(f"/api/v1/runs/{run_id}/ack", json={}, headers=partner)
    assert client.post(f"/api/v1/runs/{run_id}/checkins", json={"room_id": s.room.id, **NAMED},
                       headers=teacher).status_code == 201
    client.post(f"/api/v1/runs/{run_id}/status", json={"status": "need_help"}, headers=teacher)
    client.post(f"/api/v1/runs/{run_id}/all-clear", json={"message": "Over"}, headers=principal)

    live = [push for push in pushes.pushes if push.partner_data is not None]
    assert {push.name for push in live} >= {"run.started", "run.updated", "ack.recorded", "checkin.recorded",
                                            "accountability.updated", "staff.status", "run.ended"}
    for push in live:
        data, seen = push.data, push.partner_data
        assert set(seen) == _allowed(PartnerLiveEventSchema, data), push.name
        schema = PAYLOADS.get(data["type"])
        assert set(seen["payload"]) == (_allowed(schema, data["payload"]) if schema else set()), push.name
        _no_leak(seen, push.name)

    run = client.get(f"/api/v1/runs/{run_id}", headers=partner).get_json()
    assert set(run) == _names(PartnerRunSchema)
    _no_leak(run, "the run")
    events = client.get(f"/api/v1/runs/{run_id}/timeline", headers=partner).get_json()["events"]
    assert events
    for event in events:
        assert set(event) == _names(PartnerEventSchema)
        assert set(event["payload"]) <= _names(PAYLOADS[event["type"]]), event["type"]
        _no_leak(event, event["type"])
    report = client.get(f"/api/v1/runs/{run_id}/report", headers=partner).get_json()
    assert set(report) == _names(PartnerReportSchema)
    _no_leak(report, "the report")


def test_staff_still_see_what_partners_do_not(client, school_setup, start):
    s = school_setup
    principal = s.login(s.principal)
    run_id = start(principal, s.school, mode="real").get_json()["id"]
    event = client.get(f"/api/v1/runs/{run_id}/timeline", headers=principal).get_json()["events"][0]
    assert event["payload"]["playbook"] == "lockdown"
    assert partners.event_for_partner(event)["payload"]["playbook"] == "lockdown"


def test_accountability_answers_for_partners_list_what_partners_may_see():
    """Check-ins, the roll-up and the staff board through the API: a new field, the teacher's note and
    injured students' names stay hidden; the names of missing students pass only when the service put
    them in (the playbook allows it)."""
    room = {"id": 3, "number": "101", "name": None, "label": "101"}
    checkin = {"id": 7, "run_id": 1, "room_id": 3, "room": room, "status": "students_missing", "present": 20,
               "missing": 1, "injured": 1, "reporter": {"id": 4, "name": "Tess", "role": None},
               "missing_students": ["Zed Zebra"], "injured_students": ["Yan Yak"], "note": "Yan is with the nurse",
               "has_note": True, "new_field": "anything", "attention": "missing"}
    shown = partners.checkin_for_partner(checkin)
    assert shown["missing_students"] == ["Zed Zebra"] and shown["missing"] == 1
    assert not {"injured_students", "note", "new_field"} & set(shown) and "Yan" not in repr(shown)
    staff = {"run_id": 1, "person": {"id": 4, "name": "Tess", "role": "teacher", "mobile": "+12125550100"},
             "status": "need_help", "channel": "app", "location": "gym", "room": None, "updated_at": "t",
             "note": "door jammed", "new_field": 1}
    board = partners.staff_board_for_partner({"run_id": 1, "safe": 0, "need_help": 1, "staff": [staff]})
    assert board["staff"] == [{"run_id": 1, "person": {"id": 4, "name": "Tess", "role": "teacher"},
                               "status": "need_help", "channel": "app", "location": "gym", "room": None,
                               "updated_at": "t"}]
    rollup = partners.rollup_for_partner({"run_id": 1, "rooms": [checkin], "need_help": [],
                                          "staff_needing_help": [staff], "new_field": 2, "totals": {"missing": 1}})
    assert set(rollup) == {"run_id", "rooms", "need_help", "staff_needing_help", "totals"}
    assert rollup["rooms"] == [shown] and "note" not in rollup["staff_needing_help"][0]
    alerts = partners.run_alerts_for_partner({"run_id": 1, "mode": "real", "state": "active", "summary": {},
                                              "queue": {}, "recipients": [{"name": "Tess"}],
                                              "acks": {"count": 1, "acknowledgements": [{"name": "Tess"}]}})
    assert set(alerts) == {"run_id", "mode", "state", "summary", "queue", "acks"} and "Tess" not in repr(alerts)


def test_the_school_roster_for_partners_lists_counts_and_the_missing_students_only():
    student = {"id": 9, "name": "Zed Zebra", "grade": "7", "status": "missing", "expected_room_id": 3,
               "room_id": 3, "reported_at": "t", "flagged": False, "new_field": "x", "guardian_phone": "+1212"}
    shown = partners.school_roster_for_partner({"run_id": 1, "school_id": 2, "names_included": True,
                                                "counts": {"missing": 1}, "missing": [student],
                                                "students": [student], "unaccounted": [9]})
    assert set(shown) == {"run_id", "school_id", "names_included", "counts", "missing"}
    assert shown["missing"] == [{"id": 9, "name": "Zed Zebra", "grade": "7", "status": "missing",
                                 "expected_room_id": 3, "room_id": 3, "reported_at": "t"}]
