"""Acknowledging a run: in the app, by SMS reply and by a key press, once per recipient."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from emergency.alerts import acks
from emergency.alerts.models import Acknowledgement, Alert
from emergency.runs.service import all_clear
from tests.alerts.helpers import as_principal, events, start


def test_in_app_ack_twice_is_harmless_and_returns_the_same_ack(app, client, session, login, school, principal,
                                                                teacher, pushes):
    run = start(app, principal, school)
    headers = login(teacher)

    first = client.post(f"/api/v1/runs/{run.id}/ack", headers=headers)
    second = client.post(f"/api/v1/runs/{run.id}/ack", headers=headers)

    assert first.status_code == 200 and second.status_code == 200
    assert first.get_json()["created"] is True and second.get_json()["created"] is False
    assert first.get_json()["id"] == second.get_json()["id"]
    assert first.get_json()["channel"] == "app" and first.get_json()["kind"] == "person"
    alerts = session.scalars(select(Alert).where(Alert.run_id == run.id, Alert.person_id == teacher.id)).all()
    assert alerts and all(a.acknowledged_at is not None and a.ack_channel == "app" for a in alerts)
    assert all(a.escalate_at is None or a.acknowledged_at for a in alerts)
    [event] = events(session, run, "ack.recorded")
    assert event.payload["name"] == "Tess Teacher" and event.payload["role"] == "teacher"
    assert event.payload["kind"] == "person" and event.payload["channel"] == "app"
    assert event.payload["seconds_since_alert"] >= 0
    assert "mobile" not in str(event.payload) and teacher.mobile not in str(event.payload)
    assert pushes.names().count("ack.recorded") == 1


def test_partner_acknowledges_a_real_run_in_the_app(app, client, session, login, school, teacher, partner):
    run = start(app, teacher, school, mode="real")

    response = client.post(f"/api/v1/runs/{run.id}/ack", headers=login(partner))

    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "partner" and body["partner_id"] == partner.id and body["person_id"] is None
    [event] = events(session, run, "ack.recorded")
    assert event.payload["kind"] == "partner" and event.payload["name"] == "Officer Obi"


def test_in_app_ack_of_an_ended_run_is_a_conflict(app, client, session, login, school, principal, teacher):
    run = start(app, principal, school)
    all_clear(session, as_principal(principal), run.id)

    response = client.post(f"/api/v1/runs/{run.id}/ack", headers=login(teacher))

    assert response.status_code == 409
    assert response.get_json()["message"] == "The run has ended."
    assert session.scalar(select(Acknowledgement.id)) is None


def test_sms_ok_acknowledges_the_latest_open_alert(app, signed, session, school, principal, teacher):
    run = start(app, principal, school)

    response = signed("/webhooks/twilio/sms", {"From": teacher.mobile, "Body": " ok! ",
                                               "MessageSid": "SM" + "1" * 32})

    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert response.get_data(as_text=True).endswith(
        "<Response><Message>Confirmed: Lockdown DRILL at Port Chester Middle School.</Message></Response>")
    ack = session.scalar(select(Acknowledgement).where(Acknowledgement.run_id == run.id))
    assert ack.person_id == teacher.id and ack.channel == "sms" and ack.alert_id is not None


def test_key_press_1_on_an_alert_call_acknowledges(app, signed, session, school, teacher, partner):
    run = start(app, teacher, school, mode="real")
    call = session.scalar(select(Alert).where(Alert.run_id == run.id, Alert.partner_id == partner.id,
                                              Alert.channel == "voice"))

    response = signed(f"/webhooks/twilio/voice/{call.id}/gather", {"Digits": "1", "CallSid": "CA1"})

    assert response.status_code == 200
    assert "Thank you. Your confirmation of the Lockdown at Port Chester Middle School is recorded." in \
        response.get_data(as_text=True)
    ack = session.scalar(select(Acknowledgement).where(Acknowledgement.run_id == run.id))
    assert ack.partner_id == partner.id and ack.channel == "voice" and ack.alert_id == call.id
    session.expire_all()
    assert session.get(Alert, call.id).ack_channel == "voice"


def test_an_sms_then_a_key_press_leave_one_ack_from_the_first_channel(app, signed, session, school, teacher,
                                                                       partner):
    run = start(app, teacher, school, mode="real")
    call = session.scalar(select(Alert).where(Alert.run_id == run.id, Alert.partner_id == partner.id,
                                              Alert.channel == "voice"))

    signed("/webhooks/twilio/sms", {"From": partner.mobile, "Body": "Y"})
    signed(f"/webhooks/twilio/voice/{call.id}/gather", {"Digits": "1"})

    [ack] = session.scalars(select(Acknowledgement).where(Acknowledgement.run_id == run.id)).all()
    assert ack.channel == "sms"
    assert len(events(session, run, "ack.recorded")) == 1


def test_racing_acknowledgements_keep_one_row(app, session, school, principal, teacher, monkeypatch):
    run = start(app, principal, school)
    acks.acknowledge(session, run, person_id=teacher.id, channel="sms")
    real_find = acks.find_ack
    calls = []

    def miss_once(*args, **kwargs):
        # The other request's row is not visible yet when this one looks: only the index stops it.
        calls.append(1)
        return None if len(calls) == 1 else real_find(*args, **kwargs)

    monkeypatch.setattr(acks, "find_ack", miss_once)

    ack, created = acks.acknowledge(session, run, person_id=teacher.id, channel="voice")

    assert created is False and ack.channel == "sms"
    assert len(session.scalars(select(Acknowledgement)).all()) == 1
    assert len(events(session, run, "ack.recorded")) == 1


def test_acknowledge_needs_exactly_one_recipient(app, session, school, principal):
    run = start(app, principal, school)
    with pytest.raises(ValueError):
        acks.acknowledge(session, run, channel="app")
    with pytest.raises(ValueError):
        acks.acknowledge(session, run, person_id=principal.id, channel="pigeon")
