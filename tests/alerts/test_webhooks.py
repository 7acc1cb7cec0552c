"""The Twilio webhooks: signatures, SMS replies, the TwiML of alert calls, key presses, status callbacks.

The app talks to a FakeTwilio through the real twilio client; webhooks are posted with the Flask
test client, signed as Twilio signs them (PUBLIC_BASE_URL is http://testserver in tests).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from emergency.alerts.models import Acknowledgement, Alert, InboundMessage, OptOut
from emergency.alerts.signature import sign
from emergency.app import create_app
from emergency.runs.models import RunEvent
from emergency.runs.service import all_clear
from tests.alerts.helpers import SCHOOL, alert_of, as_principal, fake_twilio_settings, start

BANNER = "DRILL - THIS IS A DRILL."


@pytest.fixture
def app_overrides(fake):
    """The test app sends through the fake Twilio, whose auth token also signs the webhooks."""
    return fake_twilio_settings(fake)


def give_sid(session, alert: Alert, sid: str) -> None:
    alert.provider_sid = sid
    session.commit()


def twiml(response) -> str:
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    return response.get_data(as_text=True)


# -- signatures -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/voice/1",
                                  "/webhooks/twilio/voice/1/gather"])
def test_unsigned_or_badly_signed_webhooks_are_refused(client, signed, path):
    params = {"From": "+12125550100", "Body": "STOP", "MessageSid": "SMx", "MessageStatus": "delivered",
              "Digits": "1"}

    assert client.post(path, data=params).status_code == 403
    assert client.post(path, data=params, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}).status_code == 403
    assert signed(path, params, token="someone-elses-token").status_code == 403
    signature = sign("fake-token", "http://evil.example" + path, params)
    assert client.post(path, data=params, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_a_refused_stop_changes_nothing(app, client, session, teacher):
    response = client.post("/webhooks/twilio/sms", data={"From": teacher.mobile, "Body": "STOP", "MessageSid": "SM1"},
                           headers={"X-Twilio-Signature": "forged"})

    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(OptOut)) == 0
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_tampered_body_is_refused(client, fake, teacher):
    params = {"From": teacher.mobile, "Body": "OK"}
    signature = sign(fake.auth_token, "http://testserver/webhooks/twilio/sms", params)

    response = client.post("/webhooks/twilio/sms", data={**params, "Body": "STOP"},
                           headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403


def test_without_an_auth_token_every_webhook_is_refused(make_config):
    bare = create_app(make_config())  # console provider, no TWILIO_AUTH_TOKEN
    client = bare.test_client()
    params = {"From": "+12125550100", "Body": "OK"}
    for path in ("/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/voice/1"):
        signature = sign("", "http://testserver" + path, params)
        assert client.post(path, data=params, headers={"X-Twilio-Signature": signature}).status_code == 403
    bare.extensions["db"]["engine"].dispose()


@pytest.mark.parametrize(("path", "params"), [
    ("/webhooks/twilio/sms", {"Body": "OK"}),
    ("/webhooks/twilio/sms", {"From": "+12125550100"}),
    ("/webhooks/twilio/status", {"MessageStatus": "delivered"}),
    ("/webhooks/twilio/status", {"CallSid": "CA1"}),
    ("/webhooks/twilio/voice/1/gather", {"CallSid": "CA1"}),
])
def test_signed_requests_missing_fields_are_400(signed, path, params):
    response = signed(path, params)

    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_request"


# -- SMS ------------------------------------------------------------------------------------------

def test_unknown_number_gets_an_empty_response(signed, school, principal, app):
    start(app, principal, school)

    assert twiml(signed("/webhooks/twilio/sms", {"From": "+12125550199", "Body": "OK"})).endswith("<Response />")


def test_duplicate_delivery_of_a_message_acts_once(app, signed, session, school, principal, teacher):
    start(app, principal, school)
    params = {"From": teacher.mobile, "Body": "ok", "MessageSid": "SM" + "d" * 32}

    first = twiml(signed("/webhooks/twilio/sms", params))
    second = twiml(signed("/webhooks/twilio/sms", params))

    assert "<Message>Confirmed: Lockdown DRILL at" in first
    assert second.endswith("<Response />")
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 1


def test_reply_to_an_ended_run(app, signed, session, school, principal, teacher):
    run = start(app, principal, school)
    all_clear(session, as_principal(principal), run.id)

    body = twiml(signed("/webhooks/twilio/sms", {"From": teacher.mobile, "Body": "SAFE"}))

    assert body.endswith("<Response><Message>That alert has ended.</Message></Response>")


def test_stop_then_start_and_the_next_drill_calls_instead_of_texting(app, signed, session, fake, school, principal,
                                                                     teacher):
    dispatcher = app.extensions["dispatcher"]
    assert twiml(signed("/webhooks/twilio/sms", {"From": teacher.mobile, "Body": "STOP"})).endswith("<Response />")

    run = start(app, principal, school)
    session.commit()
    dispatcher.drain()

    assert fake.messages_to(teacher.mobile) == []
    [call] = fake.calls_to(teacher.mobile)
    voice = alert_of(session, run, channel="voice", person=teacher)
    assert call["url"] == f"http://testserver/webhooks/twilio/voice/{voice.id}"
    assert alert_of(session, run, channel="sms", person=teacher).status == "skipped"
    assert len(fake.messages_to(principal.mobile)) == 1
    [event] = session.scalars(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.type == "alert.opted_out"))
    assert event.payload["recipients"] == [{"name": "Tess Teacher", "role": "teacher"}]
    assert teacher.mobile not in str(event.payload)

    all_clear(session, as_principal(principal), run.id)
    session.commit()
    dispatcher.drain()
    assert fake.messages_to(teacher.mobile) == []
    signed("/webhooks/twilio/sms", {"From": teacher.mobile, "Body": "start"})
    fake.reset()

    start(app, principal, school)
    session.commit()
    dispatcher.drain()
    assert len(fake.messages_to(teacher.mobile)) == 1
    assert fake.calls_to(teacher.mobile) == []


# -- voice ----------------------------------------------------------------------------------------

def test_drill_call_says_the_banner_and_asks_for_1_twice(app, client, signed, session, school, principal, teacher):
    session.add(OptOut(number=teacher.mobile, keyword="STOP"))
    session.commit()
    run = start(app, principal, school)
    call = alert_of(session, run, channel="voice", person=teacher)
    path = f"/webhooks/twilio/voice/{call.id}"

    body = twiml(signed(path, {"CallSid": "CA1", "CallStatus": "in-progress"}))

    gather = (f'<Gather action="http://testserver{path}/gather" method="POST" numDigits="1" timeout="8">'
              f"<Say>{BANNER} LOCKDOWN at {SCHOOL} (")
    assert body.count(gather) == 2
    assert body.count("<Say>Press 1 to confirm.</Say></Gather>") == 2
    assert "Locks, lights, out of sight." in body
    assert "Reply OK" not in body
    assert body.endswith("<Say>Goodbye.</Say><Hangup /></Response>")


def test_real_call_never_says_drill(app, signed, session, school, teacher, partner):
    run = start(app, teacher, school, mode="real")
    call = alert_of(session, run, channel="voice", partner=partner)

    body = twiml(signed(f"/webhooks/twilio/voice/{call.id}", {"CallSid": "CA2"}))

    assert "DRILL" not in body.upper()
    assert f"<Say>LOCKDOWN at {SCHOOL}" in body and "<Say>Press 1 to confirm.</Say>" in body


def test_another_key_repeats_the_prompt_once_then_says_goodbye(app, signed, session, school, teacher, partner):
    run = start(app, teacher, school, mode="real")
    call = alert_of(session, run, channel="voice", partner=partner)
    path = f"/webhooks/twilio/voice/{call.id}/gather"

    again = twiml(signed(path, {"Digits": "7"}))
    assert f'action="http://testserver{path}?attempt=2"' in again and "<Say>Press 1 to confirm.</Say>" in again

    done = twiml(signed(path + "?attempt=2", {"Digits": "9"}))
    assert done.endswith("<Response><Say>Goodbye.</Say><Hangup /></Response>")
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 0

    confirmed = twiml(signed(path + "?attempt=2", {"Digits": "1"}))
    assert "is recorded" in confirmed
    assert session.scalar(select(Acknowledgement.channel)) == "voice"


def test_call_answered_after_the_all_clear_says_it_has_ended(app, signed, session, school, principal, teacher):
    session.add(OptOut(number=teacher.mobile, keyword="STOP"))
    session.commit()
    run = start(app, principal, school)
    call = alert_of(session, run, channel="voice", person=teacher)
    all_clear(session, as_principal(principal), run.id)
    session.commit()

    body = twiml(signed(f"/webhooks/twilio/voice/{call.id}", {"CallSid": "CA3"}))
    pressed = twiml(signed(f"/webhooks/twilio/voice/{call.id}/gather", {"Digits": "1"}))

    assert "<Gather" not in body and f"The Lockdown alert at {SCHOOL} has ended." in body
    assert "has ended" in pressed
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 0


def test_unknown_alert_call_hangs_up(signed):
    assert twiml(signed("/webhooks/twilio/voice/999999", {"CallSid": "CA4"})).endswith(
        "<Response><Say>Goodbye.</Say><Hangup /></Response>")
    assert twiml(signed("/webhooks/twilio/voice/999999/gather", {"Digits": "1"})).endswith(
        "<Response><Say>Goodbye.</Say><Hangup /></Response>")
    assert signed("/webhooks/twilio/voice/" + "9" * 12, {"CallSid": "CA4"}).status_code == 404


def test_nul_characters_and_long_values_do_not_break_the_sms_webhook(app, signed, session, teacher):
    response = signed("/webhooks/twilio/sms", {"From": teacher.mobile + "\x00" * 30, "Body": "O\x00K" + "!" * 3000,
                                               "MessageSid": "SM\x00" + "x" * 100})

    assert response.status_code == 200
    message = session.scalar(select(InboundMessage))
    assert message.from_number == teacher.mobile and len(message.body) == 500


# -- status callbacks -----------------------------------------------------------------------------

def test_completed_call_without_a_key_press_is_not_an_acknowledgement(app, signed, session, school, teacher,
                                                                      partner):
    run = start(app, teacher, school, mode="real")
    call = alert_of(session, run, channel="voice", partner=partner)
    give_sid(session, call, "CA" + "c" * 32)

    for status in ("initiated", "ringing", "in-progress", "completed"):
        response = signed("/webhooks/twilio/status", {"CallSid": call.provider_sid, "CallStatus": status})
        assert response.status_code == 204 and response.get_data() == b""

    session.expire_all()
    call = session.get(Alert, call.id)
    assert call.status == "completed" and call.acknowledged_at is None
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 0


def test_status_callback_is_idempotent_and_never_moves_backwards(app, signed, session, pushes, school, principal,
                                                                 teacher):
    run = start(app, principal, school)
    sms = alert_of(session, run, channel="sms", person=teacher)
    give_sid(session, sms, "SM" + "s" * 32)
    before = pushes.names().count("alert.delivery")

    def post(status: str):
        return signed("/webhooks/twilio/status", {"MessageSid": sms.provider_sid, "MessageStatus": status})

    assert post("delivered").status_code == 204
    assert post("sent").status_code == 204
    assert post("delivered").status_code == 204

    session.expire_all()
    sms = session.get(Alert, sms.id)
    assert sms.status == "delivered" and sms.provider_status == "delivered" and sms.delivered_at is not None
    assert pushes.names().count("alert.delivery") == before + 1
    # Delivery counts are for those who run the board: teachers' phones do not get a copy per callback.
    assert {p.audience for p in pushes.pushes if p.name == "alert.delivery"} == {"admins"}


def test_undelivered_status_records_the_error_on_the_timeline(app, signed, session, school, principal, teacher):
    run = start(app, principal, school)
    sms = alert_of(session, run, channel="sms", person=teacher)
    give_sid(session, sms, "SM" + "u" * 32)

    signed("/webhooks/twilio/status", {"MessageSid": sms.provider_sid, "MessageStatus": "undelivered",
                                       "ErrorCode": "30007"})

    session.expire_all()
    assert session.get(Alert, sms.id).error_code == 30007
    [failed] = session.scalars(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.type == "alert.failed"))
    assert failed.payload["recipient"] == "Tess Teacher" and failed.payload["error_code"] == 30007


@pytest.mark.parametrize("params", [
    {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"},
    {"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "ErrorCode": "not-a-number"},
    {"MessageSid": "SM" + "0" * 32, "MessageStatus": "teleported", "ErrorCode": "9" * 30},
    {"MessageSid": "SM\x00" + "0" * 300, "MessageStatus": "delivered\x00"},
])
def test_unknown_sids_and_odd_values_are_ignored(signed, params):
    response = signed("/webhooks/twilio/status", params)

    assert response.status_code == 204


def test_real_dispatch_then_callbacks_reach_delivered(app, signed, session, fake, school, principal, teacher):
    run = start(app, principal, school)
    session.commit()
    app.extensions["dispatcher"].drain()
    sms = alert_of(session, run, channel="sms", person=teacher)
    assert re.fullmatch(r"SM[0-9a-f]{32}", sms.provider_sid)

    signed("/webhooks/twilio/status", {"MessageSid": sms.provider_sid, "MessageStatus": "delivered"})

    session.expire_all()
    assert session.get(Alert, sms.id).status == "delivered"
