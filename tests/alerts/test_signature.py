"""X-Twilio-Signature: what the webhooks accept and reject."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from emergency.alerts.signature import is_valid_signature, public_url, sign

TOKEN = "district-auth-token"
URL = "https://alerts.district.example/webhooks/twilio/sms"
PARAMS = {"From": "+15551230001", "To": "+15005550006", "Body": "SAFE", "MessageSid": "SM" + "a" * 32}


def test_signature_of_the_same_url_and_params_is_valid() -> None:
    assert is_valid_signature(TOKEN, URL, PARAMS, sign(TOKEN, URL, PARAMS))


def test_tampered_param_is_rejected() -> None:
    signature = sign(TOKEN, URL, PARAMS)
    assert not is_valid_signature(TOKEN, URL, {**PARAMS, "Body": "STOP"}, signature)


def test_extra_param_is_rejected() -> None:
    signature = sign(TOKEN, URL, PARAMS)
    assert not is_valid_signature(TOKEN, URL, {**PARAMS, "Digits": "1"}, signature)


def test_signature_for_another_url_is_rejected() -> None:
    signature = sign(TOKEN, "https://evil.example/webhooks/twilio/sms", PARAMS)
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature)


def test_signature_made_with_another_token_is_rejected() -> None:
    assert not is_valid_signature(TOKEN, URL, PARAMS, sign("other-token", URL, PARAMS))


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature_is_rejected(signature: str | None) -> None:
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature)


def test_empty_auth_token_never_validates() -> None:
    assert not is_valid_signature("", URL, PARAMS, sign("", URL, PARAMS))


def test_query_string_is_part_of_the_signed_url() -> None:
    with_query = URL + "?run=42&channel=sms"
    signature = sign(TOKEN, with_query, PARAMS)
    assert is_valid_signature(TOKEN, with_query, PARAMS, signature)
    assert not is_valid_signature(TOKEN, URL, PARAMS, signature)
    assert not is_valid_signature(TOKEN, URL + "?run=43&channel=sms", PARAMS, signature)


def test_explicit_default_port_is_accepted_either_way() -> None:
    signature = sign(TOKEN, "https://alerts.district.example:443/webhooks/twilio/sms", PARAMS)
    assert is_valid_signature(TOKEN, URL, PARAMS, signature)


def test_multidict_form_from_flask_validates() -> None:
    form = MultiDict(PARAMS)
    assert is_valid_signature(TOKEN, URL, form, sign(TOKEN, URL, PARAMS))


def test_signature_covers_empty_form() -> None:
    assert is_valid_signature(TOKEN, URL, {}, sign(TOKEN, URL, {}))


@pytest.mark.parametrize(
    ("base", "path", "query", "expected"),
    [
        (
            "https://alerts.district.example",
            "/webhooks/sms",
            "",
            "https://alerts.district.example/webhooks/sms",
        ),
        (
            "https://alerts.district.example/",
            "/webhooks/sms",
            "",
            "https://alerts.district.example/webhooks/sms",
        ),
        ("https://d.example/emergency/", "webhooks/sms", "", "https://d.example/emergency/webhooks/sms"),
        ("https://d.example", "/webhooks/voice", "run=7", "https://d.example/webhooks/voice?run=7"),
        ("https://d.example", "/webhooks/voice", b"run=7&p=3", "https://d.example/webhooks/voice?run=7&p=3"),
    ],
)
def test_public_url_joins_configured_base_path_and_query(
    base: str, path: str, query: str | bytes, expected: str
) -> None:
    assert public_url(base, path, query) == expected


def test_webhook_behind_proxy_validates_against_public_url_not_local_host() -> None:
    public = public_url("https://alerts.district.example", "/webhooks/twilio/sms")
    signature = sign(TOKEN, public, PARAMS)
    # What the app sees behind the proxy: plain http on an internal host.
    assert not is_valid_signature(TOKEN, "http://10.0.0.5:8000/webhooks/twilio/sms", PARAMS, signature)
    assert is_valid_signature(TOKEN, public, PARAMS, signature)
