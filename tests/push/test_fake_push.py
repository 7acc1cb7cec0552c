"""The fake push service checks what a real one checks: the VAPID token and the encryption."""

from __future__ import annotations

import time

import pytest
import requests

from emergency.alerts.providers.base import ProviderError
from emergency.alerts.providers.webpush import WebPushProvider
from emergency.push.vapid import VapidSigner, generate_private_key
from tests.fakes.fake_push import VapidError, verify_vapid

SUBJECT = "mailto:safety@example.org"


def test_a_signed_encrypted_push_is_decrypted_by_the_device(push_service):
    device = push_service.new_device()
    provider = WebPushProvider(generate_private_key(), SUBJECT, timeout=5)
    provider.send_push(device.subscription(), {"run_id": 7, "title": "Lockdown"}, urgency="high", ttl=120)
    received = push_service.wait_for(1)[0]
    assert received.payload == {"run_id": 7, "title": "Lockdown"}
    assert (received.ttl, received.urgency) == (120, "high")


def test_a_push_without_a_vapid_token_is_refused(push_service):
    device = push_service.new_device()
    response = requests.post(device.endpoint, data=b"x", headers={"TTL": "60", "Content-Encoding": "aes128gcm"},
                             timeout=5)
    assert response.status_code == 401
    assert push_service.received == []


def test_a_token_for_another_push_service_is_refused(push_service):
    signer = VapidSigner(generate_private_key(), SUBJECT)
    header = signer.headers("https://fcm.googleapis.com/fcm/send/abc")["Authorization"]
    with pytest.raises(VapidError, match="aud"):
        verify_vapid(header, push_service.origin)


def test_an_expired_token_is_refused(push_service):
    signer = VapidSigner(generate_private_key(), SUBJECT, clock=lambda: time.time() - 13 * 3600)
    header = signer.headers(push_service.origin + "/push/x")["Authorization"]
    with pytest.raises(VapidError, match="exp"):
        verify_vapid(header, push_service.origin)


def test_a_token_signed_by_another_key_is_refused(push_service):
    header = VapidSigner(generate_private_key(), SUBJECT).headers(push_service.origin)["Authorization"]
    other = VapidSigner(generate_private_key(), SUBJECT).headers(push_service.origin)["Authorization"]
    forged = header.split(",k=")[0] + ",k=" + other.split(",k=")[1]
    with pytest.raises(VapidError, match="signature"):
        verify_vapid(forged, push_service.origin)


def test_the_signer_reuses_one_token_per_push_service_and_renews_it_before_expiry():
    now = [1_000_000.0]
    signer = VapidSigner(generate_private_key(), SUBJECT, clock=lambda: now[0])
    first = signer.headers("https://push.example/a")
    assert signer.headers("https://push.example/b") == first
    assert signer.headers("https://other.example/a") != first
    now[0] += 11.5 * 3600
    assert signer.headers("https://push.example/a") != first


@pytest.mark.parametrize(("status", "temporary"), [(404, False), (410, False), (413, False), (400, False),
                                                    (429, True), (503, True)])
def test_push_service_answers_are_classified(push_service, status, temporary):
    device = push_service.new_device()
    push_service.answer(device, status, retry_after="7" if status == 429 else None)
    provider = WebPushProvider(generate_private_key(), SUBJECT, timeout=5)
    with pytest.raises(ProviderError) as raised:
        provider.send_push(device.subscription(), {"x": 1}, urgency="high", ttl=60)
    assert raised.value.http_status == status
    assert raised.value.temporary is temporary
    assert raised.value.retry_after == (7.0 if status == 429 else None)


def test_an_unreachable_push_service_is_a_temporary_failure(push_service):
    device = push_service.new_device()
    provider = WebPushProvider(generate_private_key(), SUBJECT, timeout=1)
    with pytest.raises(ProviderError) as raised:
        provider.send_push({**device.subscription(), "endpoint": "http://127.0.0.1:9/push/x"},
                           {"x": 1}, urgency="high", ttl=60)
    assert raised.value.temporary is True
