"""The console and Twilio providers; the Twilio one drives the real twilio client against FakeTwilio."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emergency.alerts.providers import (
    ERROR_REASONS,
    PERMANENT_CODES,
    ConsoleProvider,
    Provider,
    ProviderError,
    RewritingHttpClient,
    SendResult,
    TwilioProvider,
    classify,
)
from emergency.alerts.signature import is_valid_signature
from tests.fakes.fake_twilio import CallbackSink, FakeTwilio

SENDER = "+15005550006"
STAFF = "+15551230001"
SERVICE_SID = "MG" + "1" * 32


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as server:
        yield server


@pytest.fixture
def make_provider(fake: FakeTwilio) -> Callable[..., TwilioProvider]:
    def make(**overrides: Any) -> TwilioProvider:
        settings: dict[str, Any] = {
            "account_sid": fake.account_sid,
            "auth_token": fake.auth_token,
            "from_number": SENDER,
            "api_base": fake.base_url,
            "timeout": 2.0,
            **overrides,
        }
        return TwilioProvider(**settings)

    return make


@pytest.fixture
def provider(make_provider: Callable[..., TwilioProvider]) -> TwilioProvider:
    return make_provider()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "code", "temporary"),
    [
        (None, None, True),
        (429, 20429, True),
        (429, None, True),
        (400, 20429, True),
        (500, None, True),
        (503, 20503, True),
        (400, 21211, False),
        (400, 21610, False),
        (400, 21614, False),
        (500, 21211, False),
        (400, 21408, False),
        (401, 20003, False),
        (404, 20404, False),
        (302, None, True),
    ],
)
def test_classify_retries_only_what_can_succeed_later(
    http_status: int | None, code: int | None, temporary: bool
) -> None:
    assert classify(http_status, code) is temporary


def test_permanent_codes_have_reasons_for_the_board() -> None:
    assert frozenset({21211, 21610, 21614}) == PERMANENT_CODES
    assert ERROR_REASONS[21610] == "recipient unsubscribed (STOP)"
    assert ERROR_REASONS[30007] == "carrier filtered"
    assert ProviderError("x", code=21614, temporary=False).reason == "not a mobile number"
    assert ProviderError("x", temporary=True).reason is None


# -- console ----------------------------------------------------------------------------------


def test_console_logs_sms_and_reports_it_delivered(caplog: pytest.LogCaptureFixture) -> None:
    console = ConsoleProvider(show_numbers=True)
    with caplog.at_level(logging.INFO, logger="emergency.alerts.console"):
        result = console.send_sms(STAFF, "DRILL - LOCKDOWN", status_callback=None)
    assert result.status == "delivered"
    assert result.sid.startswith("CONSOLE-")
    assert [r.getMessage() for r in caplog.records] == [f"SMS to {STAFF} : DRILL - LOCKDOWN"]
    assert caplog.records[0].levelno == logging.INFO


def test_console_logs_call_and_reports_it_completed(caplog: pytest.LogCaptureFixture) -> None:
    console = ConsoleProvider(show_numbers=True)
    with caplog.at_level(logging.INFO, logger="emergency.alerts.console"):
        result = console.place_call(STAFF, twiml_url="https://d.example/twiml/1", status_callback=None)
    assert result.status == "completed"
    assert STAFF in caplog.text and "https://d.example/twiml/1" in caplog.text


def test_console_masks_numbers_unless_told_to_show_them(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="emergency.alerts.console"):
        ConsoleProvider().send_sms(STAFF, "hello", status_callback=None)
        ConsoleProvider().place_call(STAFF, twiml_url="https://d.example/twiml/1", status_callback=None)
    assert STAFF not in caplog.text
    assert all(STAFF[-4:] in r.getMessage() and STAFF[2:-4] not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("env", "shown"), [("production", False), ("development", True), ("demo", True)])
def test_the_console_provider_shows_whole_numbers_in_development_only(env, shown, caplog) -> None:
    from emergency.alerts.setup import build_provider

    provider = build_provider({"ALERT_PROVIDER": "console", "ENV": env})
    with caplog.at_level(logging.INFO, logger="emergency.alerts.console"):
        provider.send_sms(STAFF, "hello", status_callback=None)
    assert (STAFF in caplog.text) is shown
    assert STAFF[-4:] in caplog.text


def test_console_uses_the_given_logger(caplog: pytest.LogCaptureFixture) -> None:
    console = ConsoleProvider(logger=logging.getLogger("district.console"))
    with caplog.at_level(logging.INFO, logger="district.console"):
        console.send_sms(STAFF, "hello", status_callback=None)
    assert caplog.records[0].name == "district.console"


def test_console_status_is_final_and_sids_are_unique() -> None:
    console = ConsoleProvider()
    assert console.fetch_status("sms", "CONSOLE-x") == ("delivered", None)
    assert console.fetch_status("voice", "CONSOLE-x") == ("completed", None)
    sids = {console.send_sms(STAFF, "x", status_callback=None).sid for _ in range(50)}
    assert len(sids) == 50
    with pytest.raises(ValueError):
        console.fetch_status("fax", "CONSOLE-x")


def test_both_providers_satisfy_the_provider_interface(provider: TwilioProvider) -> None:
    assert isinstance(ConsoleProvider(), Provider)
    assert isinstance(provider, Provider)
    assert (ConsoleProvider.name, TwilioProvider.name) == ("console", "twilio")


# -- Twilio: sending ----------------------------------------------------------------------------


def test_sms_from_a_number_is_created_at_twilio(fake: FakeTwilio, provider: TwilioProvider) -> None:
    result = provider.send_sms(STAFF, "DRILL - HOLD. In your room.", status_callback="https://d.example/cb")
    assert isinstance(result, SendResult)
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert result.status == "queued"
    [message] = fake.messages_to(STAFF)
    assert message["sid"] == result.sid
    assert message["from"] == SENDER
    assert message["body"] == "DRILL - HOLD. In your room."
    assert message["status_callback"] == "https://d.example/cb"
    assert message["messaging_service_sid"] is None


def test_sms_through_a_messaging_service(
    fake: FakeTwilio, make_provider: Callable[..., TwilioProvider]
) -> None:
    provider = make_provider(from_number=None, messaging_service_sid=SERVICE_SID)
    provider.send_sms(STAFF, "hello", status_callback=None)
    [message] = fake.messages
    assert message["messaging_service_sid"] == SERVICE_SID
    assert message["status_callback"] is None


def test_call_fetches_twiml_by_post_and_asks_for_every_status_event(
    fake: FakeTwilio, provider: TwilioProvider
) -> None:
    result = provider.place_call(
        STAFF, twiml_url="https://d.example/twiml/7", status_callback="https://d.example/cs"
    )
    assert result.sid.startswith("CA") and result.status == "queued"
    [call] = fake.calls_to(STAFF)
    assert (call["sid"], call["from"], call["url"], call["method"]) == (
        result.sid,
        SENDER,
        "https://d.example/twiml/7",
        "POST",
    )
    assert call["status_callback"] == "https://d.example/cs"
    assert call["status_callback_event"] == ["initiated", "ringing", "answered", "completed"]


def test_call_needs_a_from_number_not_just_a_messaging_service(
    fake: FakeTwilio, make_provider: Callable[..., TwilioProvider]
) -> None:
    provider = make_provider(from_number=None, messaging_service_sid=SERVICE_SID)
    with pytest.raises(ProviderError) as caught:
        provider.place_call(STAFF, twiml_url="https://d.example/twiml", status_callback=None)
    assert caught.value.temporary is False
    assert "from_number" in caught.value.message
    assert fake.requests == 0


def test_provider_needs_credentials_and_a_sender() -> None:
    with pytest.raises(ValueError):
        TwilioProvider("AC" + "0" * 32, "token")
    with pytest.raises(ValueError):
        TwilioProvider("AC" + "0" * 32, "", from_number=SENDER)


# -- Twilio: failures -----------------------------------------------------------------------------


def test_rate_limit_burst_is_temporary_then_sending_resumes(
    fake: FakeTwilio, provider: TwilioProvider
) -> None:
    fake.fail_next(2, http_status=429)
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            provider.send_sms(STAFF, "x", status_callback=None)
        assert (caught.value.temporary, caught.value.code, caught.value.http_status) == (True, 20429, 429)
    assert provider.send_sms(STAFF, "x", status_callback=None).status == "queued"
    assert len(fake.messages) == 1


@pytest.mark.parametrize("http_status", [500, 503])
def test_server_error_is_temporary(fake: FakeTwilio, provider: TwilioProvider, http_status: int) -> None:
    fake.fail_next(1, http_status=http_status)
    with pytest.raises(ProviderError) as caught:
        provider.place_call(STAFF, twiml_url="https://d.example/twiml", status_callback=None)
    assert caught.value.temporary is True
    assert caught.value.http_status == http_status


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES))
def test_permanent_recipient_errors_carry_their_code(
    fake: FakeTwilio, provider: TwilioProvider, code: int
) -> None:
    fake.fail_number(STAFF, code=code)
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert (caught.value.temporary, caught.value.code, caught.value.http_status) == (False, code, 400)
    assert caught.value.reason == ERROR_REASONS[code]
    assert provider.send_sms("+15551230002", "x", status_callback=None).status == "queued"


def test_malformed_number_is_rejected_by_twilio_as_invalid(provider: TwilioProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.send_sms("555-1234", "x", status_callback=None)
    assert (caught.value.temporary, caught.value.code) == (False, 21211)
    assert "555-1234" in caught.value.message


def test_other_4xx_is_permanent(fake: FakeTwilio, provider: TwilioProvider) -> None:
    fake.fail_number(STAFF, code=21408, http_status=400)
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert (caught.value.temporary, caught.value.code) == (False, 21408)
    with pytest.raises(ProviderError) as caught:
        provider.send_sms("+15551230002", "", status_callback=None)
    assert (caught.value.temporary, caught.value.code) == (False, 21602)


def test_wrong_credentials_are_permanent(
    fake: FakeTwilio, make_provider: Callable[..., TwilioProvider]
) -> None:
    provider = make_provider(auth_token="not-the-token")
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert (caught.value.temporary, caught.value.http_status, caught.value.code) == (False, 401, 20003)
    assert fake.messages == []


def test_response_slower_than_timeout_is_temporary(
    fake: FakeTwilio, make_provider: Callable[..., TwilioProvider]
) -> None:
    # The answer would take 30 s (the fake stops waiting at teardown): a send that returns long before
    # that gave up at its timeout. The margin is wide, so a stalled host does not fail it.
    fake.latency = 30.0
    provider = make_provider(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert time.monotonic() - started < 10
    assert caught.value.temporary is True
    assert (caught.value.code, caught.value.http_status) == (None, None)
    assert "timed out" in caught.value.message


def test_connection_refused_is_temporary(make_provider: Callable[..., TwilioProvider]) -> None:
    provider = make_provider(api_base=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert caught.value.temporary is True
    assert caught.value.http_status is None


def test_twilio_outage_is_temporary_and_sending_resumes_after(
    fake: FakeTwilio, provider: TwilioProvider
) -> None:
    provider.send_sms(STAFF, "before", status_callback=None)
    fake.stop()
    with pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "during", status_callback=None)
    assert caught.value.temporary is True
    fake.start()
    provider.send_sms(STAFF, "after", status_callback=None)
    assert [m["body"] for m in fake.messages] == ["before", "after"]


def test_non_twilio_answer_from_a_proxy_is_temporary(make_provider: Callable[..., TwilioProvider]) -> None:
    with CallbackSink(
        status_code=200, body="<html>captive portal</html>", content_type="text/html"
    ) as portal:
        provider = make_provider(api_base=portal.base_url)
        with pytest.raises(ProviderError) as caught:
            provider.send_sms(STAFF, "x", status_callback=None)
    assert caught.value.temporary is True


def test_bad_gateway_html_from_a_proxy_is_temporary(make_provider: Callable[..., TwilioProvider]) -> None:
    with CallbackSink(status_code=502, body="<html>Bad Gateway</html>", content_type="text/html") as proxy:
        provider = make_provider(api_base=proxy.base_url)
        with pytest.raises(ProviderError) as caught:
            provider.send_sms(STAFF, "x", status_callback=None)
    assert (caught.value.temporary, caught.value.http_status, caught.value.code) == (True, 502, None)


def test_auth_token_never_appears_in_logs_errors_or_repr(
    fake: FakeTwilio, make_provider: Callable[..., TwilioProvider], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-auth-token-value"
    provider = make_provider(auth_token=secret)
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        provider.send_sms(STAFF, "x", status_callback=None)
    assert caplog.records, "the twilio client logs requests at INFO; the check below must see them"
    assert secret not in caplog.text
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert secret not in repr(provider)


# -- Twilio: status -------------------------------------------------------------------------------


def test_fetch_status_reports_message_and_call_progress(fake: FakeTwilio, provider: TwilioProvider) -> None:
    fake.progress = False
    sms = provider.send_sms(STAFF, "x", status_callback=None)
    call = provider.place_call(STAFF, twiml_url="https://d.example/twiml", status_callback=None)
    assert provider.fetch_status("sms", sms.sid) == ("queued", None)
    fake.set_message_status(sms.sid, "undelivered", error_code=30007)
    fake.set_call_status(call.sid, "no-answer")
    assert provider.fetch_status("sms", sms.sid) == ("undelivered", 30007)
    assert provider.fetch_status("voice", call.sid) == ("no-answer", None)


def test_fetch_status_sees_delivery_even_when_callbacks_are_lost(
    fake: FakeTwilio, provider: TwilioProvider
) -> None:
    fake.callbacks = False
    sms = provider.send_sms(STAFF, "x", status_callback="http://127.0.0.1:9/never")
    assert fake.wait_for(lambda: fake.message(sms.sid)["status"] == "delivered", timeout=2)
    assert provider.fetch_status("sms", sms.sid) == ("delivered", None)
    assert fake.callback_log == []


def test_fetch_status_of_unknown_sid_is_permanent(provider: TwilioProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.fetch_status("sms", "SM" + "0" * 32)
    assert (caught.value.temporary, caught.value.http_status) == (False, 404)
    with pytest.raises(ValueError):
        provider.fetch_status("fax", "SM" + "0" * 32)


def test_status_callbacks_arrive_signed_for_the_callback_url(
    fake: FakeTwilio, provider: TwilioProvider, sink: CallbackSink
) -> None:
    sms = provider.send_sms(STAFF, "x", status_callback=sink.url("/webhooks/twilio/status?run=3"))
    received = sink.wait_for(3)
    assert [r["params"]["MessageStatus"] for r in received] == ["queued", "sent", "delivered"]
    for request in received:
        assert request["params"]["MessageSid"] == sms.sid
        assert request["url"] == sink.url("/webhooks/twilio/status?run=3")
        signature = request["headers"]["X-Twilio-Signature"]
        assert is_valid_signature(fake.auth_token, request["url"], request["params"], signature)
        assert not is_valid_signature("wrong-token", request["url"], request["params"], signature)


def test_call_status_callbacks_follow_the_call(
    fake: FakeTwilio, provider: TwilioProvider, sink: CallbackSink
) -> None:
    call = provider.place_call(STAFF, twiml_url="https://d.example/twiml", status_callback=sink.url("/cs"))
    received = sink.wait_for(4)
    assert [r["params"]["CallStatus"] for r in received] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert received[-1]["params"]["CallDuration"] == "12"
    assert {r["params"]["CallSid"] for r in received} == {call.sid}


# -- the rewriting HTTP client ----------------------------------------------------------------------


def test_rewriting_client_swaps_scheme_and_host_only() -> None:
    client = RewritingHttpClient("http://127.0.0.1:8765")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=5")
        == "http://127.0.0.1:8765/2010-04-01/Accounts/AC1/Messages.json?PageSize=5"
    )
    prefixed = RewritingHttpClient("https://staging.district.example/twilio/")
    assert (
        prefixed.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json")
        == "https://staging.district.example/twilio/2010-04-01/Accounts/AC1/Calls.json"
    )


@pytest.mark.parametrize("api_base", ["127.0.0.1:8765", "ftp://host", "http://"])
def test_rewriting_client_rejects_a_base_without_scheme_or_host(api_base: str) -> None:
    with pytest.raises(ValueError):
        RewritingHttpClient(api_base)


@pytest.mark.parametrize("no_proxy, expected", [("", {"https": "http://proxy.district.example:3128"}),
                                                ("api.twilio.com", {})])
def test_twilio_takes_the_proxy_from_the_environment_once_at_start(monkeypatch, no_proxy, expected) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.district.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    provider = TwilioProvider("AC" + "0" * 32, "token", from_number="+15005550006")
    http_client = provider._client.http_client

    assert {k: v for k, v in http_client.proxy.items() if k == "https"} == expected
    assert http_client.session.trust_env is False  # not read again on every send


# -- the Twilio transport: kept connections for message and call creation -----------------------------


def test_messages_and_calls_are_created_over_kept_connections_not_requests(
    fake: FakeTwilio, provider: TwilioProvider, monkeypatch
) -> None:
    from twilio.http.http_client import TwilioHttpClient

    monkeypatch.setattr(TwilioHttpClient, "request", lambda *a, **k: pytest.fail("went through requests"))
    first = provider.send_sms(STAFF, "one", status_callback="https://d.example/cb?run=1")
    second = provider.send_sms(STAFF, "two & more", status_callback=None)
    call = provider.place_call(STAFF, twiml_url="https://d.example/twiml", status_callback="https://d.example/cs")
    assert first.sid != second.sid and call.sid.startswith("CA")
    assert [m["body"] for m in fake.messages] == ["one", "two & more"]  # form-encoded as requests would
    [kept] = provider._client.http_client.kept._idle.values()
    assert len(kept) == 1, "one connection carried all three"


def test_behind_a_proxy_every_request_goes_through_requests(fake: FakeTwilio, monkeypatch) -> None:
    from twilio.http.http_client import TwilioHttpClient

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.district.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.district.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    provider = TwilioProvider(fake.account_sid, fake.auth_token, from_number=SENDER, api_base=fake.base_url)
    seen: list[str] = []

    def through_requests(self, method, url, *args, **kwargs):
        seen.append(method)
        raise requests.ConnectionError("the proxy is not there in a test")

    monkeypatch.setattr(TwilioHttpClient, "request", through_requests)
    with pytest.raises(ProviderError, match="network error"):
        provider.send_sms(STAFF, "x", status_callback=None)
    assert seen == ["POST"]
    assert fake.messages == []


def test_a_ca_bundle_from_the_environment_is_the_only_trust_for_kept_connections(tmp_path, monkeypatch) -> None:
    """REQUESTS_CA_BUNDLE (a district's own CA in front of the internet) is trusted by the kept connections
    as requests trusts it; without it, the system's CAs, which do not know a private certificate."""
    from tests.alerts.test_keepalive_http import TinyServer, _certificate

    cert_path, key_path = _certificate(tmp_path, "localhost")
    created = b'{"sid": "SM' + b"0" * 32 + b'", "status": "queued"}'
    answer = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(created), created)

    def twilio_behind_tls() -> tuple[TinyServer, str]:
        server = TinyServer(reply=answer)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
        inner, server.sock = server.sock, context.wrap_socket(socket.create_server(("127.0.0.1", 0)),
                                                              server_side=True)
        inner.close()
        threading.Thread(target=server._accept, daemon=True).start()
        return server, f"https://localhost:{server.sock.getsockname()[1]}"

    refused, refused_base = twilio_behind_tls()  # a handshake it refuses ends its accepting: one server each
    trusted, trusted_base = twilio_behind_tls()
    try:
        untrusting = TwilioProvider("AC" + "0" * 32, "token", from_number=SENDER, api_base=refused_base)
        with pytest.raises(ProviderError, match="network error"):
            untrusting.send_sms(STAFF, "x", status_callback=None)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
        trusting = TwilioProvider("AC" + "0" * 32, "token", from_number=SENDER, api_base=trusted_base)
        assert trusting.send_sms(STAFF, "x", status_callback=None).sid == "SM" + "0" * 32
    finally:
        refused.close()
        trusted.close()
