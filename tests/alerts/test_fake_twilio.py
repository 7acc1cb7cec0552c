"""FakeTwilio itself: its REST answers, callbacks and knobs, which the rest of the suite relies on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emergency.alerts.signature import is_valid_signature
from tests.fakes.fake_twilio import CallbackSink, FakeTwilio

STAFF = "+15551230001"
SENDER = "+15005550006"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as server:
        yield server


def _create(
    fake: FakeTwilio, kind: str, auth: tuple[str, str] | None = None, **form: Any
) -> requests.Response:
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/{kind}.json"
    return requests.post(url, data=form, auth=auth or (fake.account_sid, fake.auth_token), timeout=5)


def _sms(fake: FakeTwilio, to: str = STAFF, **form: Any) -> requests.Response:
    return _create(fake, "Messages", To=to, From=SENDER, Body="hello", **form)


def _statuses(received: list[dict[str, Any]], key: str = "MessageStatus") -> list[str]:
    return [request["params"][key] for request in received]


# -- the REST API -------------------------------------------------------------------------------


def test_created_message_looks_like_twilio_json(fake: FakeTwilio) -> None:
    response = _sms(fake, StatusCallback="https://d.example/cb")
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert body["account_sid"] == fake.account_sid
    assert (body["to"], body["from"], body["body"], body["status"]) == (STAFF, SENDER, "hello", "queued")
    assert body["error_code"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{body['sid']}.json"
    [message] = fake.messages
    assert message["status_callback"] == "https://d.example/cb"
    assert isinstance(message["accepted_at"], float)


def test_unauthenticated_request_gets_twilio_401(fake: FakeTwilio) -> None:
    response = _create(fake, "Messages", auth=(fake.account_sid, "wrong"), To=STAFF, From=SENDER, Body="x")
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    no_auth = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json", timeout=5
    )
    assert no_auth.status_code == 401
    assert fake.messages == []


def test_other_accounts_resources_are_not_found(fake: FakeTwilio) -> None:
    other = "AC" + "9" * 32
    response = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{other}/Messages.json",
        data={"To": STAFF, "From": SENDER, "Body": "x"},
        auth=(fake.account_sid, fake.auth_token),
        timeout=5,
    )
    assert (response.status_code, response.json()["code"]) == (404, 20404)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Body": "x"}, 21604),
        ({"To": "5551230001", "From": SENDER, "Body": "x"}, 21211),
        ({"To": STAFF, "Body": "x"}, 21603),
        ({"To": STAFF, "From": SENDER}, 21602),
        ({"To": STAFF, "From": SENDER, "Body": "x" * 1601}, 21617),
    ],
)
def test_message_validation_errors_use_twilio_codes(
    fake: FakeTwilio, form: dict[str, str], code: int
) -> None:
    response = _create(fake, "Messages", **form)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert fake.messages == []
    assert fake.rejections[0]["code"] == code


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Url": "https://d.example/t"}, 21201),
        ({"To": "+1", "From": SENDER, "Url": "https://d.example/t"}, 21211),
        ({"To": STAFF, "Url": "https://d.example/t"}, 21213),
        ({"To": STAFF, "From": SENDER}, 21205),
    ],
)
def test_call_validation_errors_use_twilio_codes(fake: FakeTwilio, form: dict[str, str], code: int) -> None:
    response = _create(fake, "Calls", **form)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert fake.calls == []


def test_messaging_service_sends_from_its_pool_number(fake: FakeTwilio) -> None:
    response = _create(fake, "Messages", To=STAFF, MessagingServiceSid="MG" + "2" * 32, Body="x")
    assert response.status_code == 201
    assert response.json()["messaging_service_sid"] == "MG" + "2" * 32
    assert fake.messages[0]["from"] == fake.phone_number


def test_fetch_returns_current_status(fake: FakeTwilio) -> None:
    fake.progress = False
    sid = _sms(fake).json()["sid"]
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json"
    auth = (fake.account_sid, fake.auth_token)
    assert requests.get(url, auth=auth, timeout=5).json()["status"] == "queued"
    fake.set_message_status(sid, "failed", error_code=30008)
    fetched = requests.get(url, auth=auth, timeout=5).json()
    assert (fetched["status"], fetched["error_code"]) == ("failed", 30008)
    with pytest.raises(KeyError):
        fake.set_message_status("SM" + "0" * 32, "sent")


# -- failure knobs ------------------------------------------------------------------------------


def test_fail_next_fails_exactly_n_creates(fake: FakeTwilio) -> None:
    fake.fail_next(2, http_status=429)
    fake.fail_next(1, http_status=500)
    answers = [(r.status_code, r.json().get("code")) for r in (_sms(fake) for _ in range(4))]
    assert answers == [(429, 20429), (429, 20429), (500, 20500), (201, None)]
    assert fake.stats()["rejected"] == 3


def test_fail_number_hits_only_that_recipient(fake: FakeTwilio) -> None:
    fake.fail_number(STAFF, code=21614)
    assert _sms(fake).json()["code"] == 21614
    assert _sms(fake, to="+15551230002").status_code == 201
    assert fake.messages_to(STAFF) == []


def test_max_concurrency_answers_429_like_twilio(fake: FakeTwilio) -> None:
    fake.configure(latency=0.3, max_concurrency=2)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(_sms(fake).status_code)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 201, 429, 429, 429]
    assert fake.stats()["max_in_flight"] == 5


def test_stats_report_concurrency_and_achieved_rate(fake: FakeTwilio) -> None:
    fake.latency = 0.1
    threads = [threading.Thread(target=_sms, args=(fake, f"+1555123{n:04d}")) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = fake.stats()
    assert (stats["creates"], stats["accepted"], stats["messages"]) == (4, 4, 4)
    assert stats["max_in_flight"] >= 2
    assert len(stats["accepted_at"]) == 4 and stats["accepted_at"] == sorted(stats["accepted_at"])
    assert stats["rate_per_second"] is None or stats["rate_per_second"] > 0
    assert fake.requests == 4


# -- status callbacks ---------------------------------------------------------------------------


def test_sms_callbacks_run_queued_sent_delivered_and_are_signed(fake: FakeTwilio, sink: CallbackSink) -> None:
    sid = _sms(fake, StatusCallback=sink.url("/status")).json()["sid"]
    received = sink.wait_for(3)
    assert _statuses(received) == ["queued", "sent", "delivered"]
    for request in received:
        params = request["params"]
        assert (params["MessageSid"], params["To"], params["From"]) == (sid, STAFF, SENDER)
        assert params["AccountSid"] == fake.account_sid
        assert "ErrorCode" not in params
        assert is_valid_signature(
            fake.auth_token, request["url"], params, request["headers"]["X-Twilio-Signature"]
        )
    assert fake.wait_for(lambda: fake.message(sid)["status"] == "delivered")
    assert [entry["status_code"] for entry in fake.wait_for_callbacks(3)] == [204, 204, 204]


def test_undelivered_sms_reports_carrier_error_code(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.final_sms_status = "undelivered"
    sid = _sms(fake, StatusCallback=sink.url()).json()["sid"]
    received = sink.wait_for(3)
    assert _statuses(received) == ["queued", "sent", "undelivered"]
    assert received[-1]["params"]["ErrorCode"] == "30007"
    assert fake.wait_for(lambda: fake.message(sid)["error_code"] == 30007)


def test_failed_sms_skips_sent(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.final_sms_status = "failed"
    _sms(fake, StatusCallback=sink.url())
    received = sink.wait_for(2)
    assert _statuses(received) == ["queued", "failed"]
    assert received[-1]["params"]["ErrorCode"] == "30008"


def test_set_outcome_overrides_final_status_per_number(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.set_outcome(STAFF, "undelivered", error_code=30003)
    _sms(fake, StatusCallback=sink.url("/a"))
    _sms(fake, to="+15551230002", StatusCallback=sink.url("/b"))
    received = sink.wait_for(6)
    final = {
        r["path"]: r["params"] for r in received if r["params"]["MessageStatus"] not in ("queued", "sent")
    }
    assert final["/a"]["MessageStatus"] == "undelivered" and final["/a"]["ErrorCode"] == "30003"
    assert final["/b"]["MessageStatus"] == "delivered"


def test_duplicate_callbacks_send_each_status_twice(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.duplicate_callbacks = True
    _sms(fake, StatusCallback=sink.url())
    assert _statuses(sink.wait_for(6)) == ["queued", "queued", "sent", "sent", "delivered", "delivered"]


def test_reordered_callbacks_send_the_final_status_first(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.reorder_callbacks = True
    sid = _sms(fake, StatusCallback=sink.url()).json()["sid"]
    assert _statuses(sink.wait_for(3)) == ["delivered", "queued", "sent"]
    # The truth at Twilio never moves backwards, whatever order the callbacks arrive in.
    assert fake.message(sid)["status"] == "delivered"


def test_lost_callbacks_still_advance_the_status(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.callbacks = False
    sid = _sms(fake, StatusCallback=sink.url()).json()["sid"]
    assert fake.wait_for(lambda: fake.message(sid)["status"] == "delivered", timeout=2)
    assert sink.received == [] and fake.callback_log == []


def test_stuck_queue_leaves_messages_queued(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.progress = False
    sid = _sms(fake, StatusCallback=sink.url()).json()["sid"]
    assert not fake.wait_for(lambda: fake.message(sid)["status"] != "queued", timeout=0.2)
    assert sink.received == []


def test_call_callbacks_only_for_requested_events(fake: FakeTwilio, sink: CallbackSink) -> None:
    _create(
        fake,
        "Calls",
        To=STAFF,
        From=SENDER,
        Url="https://d.example/t",
        StatusCallback=sink.url("/all"),
        StatusCallbackEvent=["initiated", "ringing", "answered", "completed"],
    )
    _create(
        fake,
        "Calls",
        To="+15551230002",
        From=SENDER,
        Url="https://d.example/t",
        StatusCallback=sink.url("/end"),
    )
    received = sink.wait_for(5)
    by_path = {
        path: [r["params"]["CallStatus"] for r in received if r["path"] == path] for path in ("/all", "/end")
    }
    assert by_path == {"/all": ["initiated", "ringing", "in-progress", "completed"], "/end": ["completed"]}


@pytest.mark.parametrize(
    ("final", "statuses"),
    [
        ("no-answer", ["initiated", "ringing", "no-answer"]),
        ("busy", ["initiated", "ringing", "busy"]),
        ("failed", ["initiated", "failed"]),
    ],
)
def test_final_call_status_knob(
    fake: FakeTwilio, sink: CallbackSink, final: str, statuses: list[str]
) -> None:
    fake.final_call_status = final
    sid = _create(
        fake,
        "Calls",
        To=STAFF,
        From=SENDER,
        Url="https://d.example/t",
        StatusCallback=sink.url(),
        StatusCallbackEvent=["initiated", "ringing", "answered", "completed"],
    ).json()["sid"]
    received = sink.wait_for(len(statuses))
    assert _statuses(received, "CallStatus") == statuses
    assert received[-1]["params"]["CallDuration"] == "0"
    assert fake.wait_for(lambda: fake.call(sid)["status"] == final)


def test_route_delivers_to_local_server_but_signs_the_public_url(
    fake: FakeTwilio, sink: CallbackSink
) -> None:
    public = "https://alerts.district.example"
    fake.route(public, sink.base_url)
    _sms(fake, StatusCallback=public + "/webhooks/twilio/status")
    request = sink.wait_for(1)[0]
    assert request["path"] == "/webhooks/twilio/status"
    signature = request["headers"]["X-Twilio-Signature"]
    assert is_valid_signature(
        fake.auth_token, public + "/webhooks/twilio/status", request["params"], signature
    )
    assert not is_valid_signature(fake.auth_token, request["url"], request["params"], signature)


def test_unreachable_callback_url_is_logged_not_fatal(fake: FakeTwilio) -> None:
    with CallbackSink() as gone:
        dead_url = gone.url()
    fake.callback_timeout = 0.5
    _sms(fake, StatusCallback=dead_url)
    log = fake.wait_for_callbacks(3)
    assert all(entry["status_code"] is None and entry["error"] for entry in log)


# -- Twilio calling the district ----------------------------------------------------------------


def test_inbound_sms_is_signed_like_twilio(fake: FakeTwilio, sink: CallbackSink) -> None:
    response = fake.send_inbound_sms(sink.url("/webhooks/twilio/sms"), from_=STAFF, body="SAFE 24/25")
    assert response.status_code == 204
    [request] = sink.received
    params = request["params"]
    assert (params["From"], params["To"], params["Body"]) == (STAFF, fake.phone_number, "SAFE 24/25")
    assert params["MessageSid"].startswith("SM") and params["AccountSid"] == fake.account_sid
    assert params["NumSegments"] == "1"
    assert is_valid_signature(
        fake.auth_token, request["url"], params, request["headers"]["X-Twilio-Signature"]
    )


def test_inbound_stop_blocks_later_sms_until_start(fake: FakeTwilio, sink: CallbackSink) -> None:
    fake.send_inbound_sms(sink.url(), from_=STAFF, body=" stop ")
    assert fake.opted_out == {STAFF}
    assert _sms(fake).json()["code"] == 21610
    fake.send_inbound_sms(sink.url(), from_=STAFF, body="START")
    assert _sms(fake).status_code == 201


def test_post_signed_sends_gather_digits_and_can_sign_wrongly(fake: FakeTwilio, sink: CallbackSink) -> None:
    params = {"CallSid": "CA" + "3" * 32, "Digits": "1", "AccountSid": fake.account_sid}
    fake.post_signed(sink.url("/webhooks/twilio/voice/gather?run=9"), params)
    fake.post_signed(sink.url("/webhooks/twilio/voice/gather?run=9"), params, auth_token="forged")
    good, forged = sink.wait_for(2)
    assert good["params"] == params
    assert is_valid_signature(
        fake.auth_token, good["url"], good["params"], good["headers"]["X-Twilio-Signature"]
    )
    assert not is_valid_signature(
        fake.auth_token, forged["url"], forged["params"], forged["headers"]["X-Twilio-Signature"]
    )


# -- housekeeping ---------------------------------------------------------------------------------


def test_reset_forgets_everything_and_restores_knobs() -> None:
    with FakeTwilio(latency=0.0, duplicate_callbacks=True) as fake:
        _sms(fake)
        fake.configure(duplicate_callbacks=False, final_sms_status="failed")
        fake.fail_next(3)
        fake.reset()
        assert fake.messages == [] and fake.stats()["creates"] == 0
        assert (fake.duplicate_callbacks, fake.final_sms_status) == (True, "delivered")
        assert _sms(fake).status_code == 201


def test_configure_rejects_unknown_knobs_and_bad_statuses(fake: FakeTwilio) -> None:
    with pytest.raises(TypeError):
        fake.configure(calback=False)
    with pytest.raises(ValueError):
        fake.configure(final_sms_status="read")
    with pytest.raises(TypeError):
        FakeTwilio(latancy=1)


def test_wait_for_messages_fails_loudly_on_timeout(fake: FakeTwilio) -> None:
    _sms(fake)
    assert len(fake.wait_for_messages(1)) == 1
    with pytest.raises(AssertionError, match="expected 2 messages"):
        fake.wait_for_messages(2, timeout=0.1)


def test_restart_keeps_the_same_base_url(fake: FakeTwilio) -> None:
    before = fake.base_url
    fake.stop()
    assert not fake.running
    with pytest.raises(requests.ConnectionError):
        _sms(fake)
    fake.start()
    assert fake.base_url == before
    assert _sms(fake).status_code == 201
