"""Web Push (RFC 8030) through pywebpush: encrypted (RFC 8291, aes128gcm), signed with VAPID (RFC 8292).

What the push service answers decides what happens to the alert:
201 (or any 2xx) accepted -> sent; 404/410 the subscription is gone -> failed, and the device is
removed; 400/413 and other 4xx -> failed for good; 429 and 5xx -> retried, honouring Retry-After.
"""

from __future__ import annotations

import email.utils
import json
import time

from pywebpush import WebPusher

from emergency.alerts.providers.base import ProviderError, SendResult
from emergency.alerts.providers.keepalive import KeepAliveHttp, Unreachable
from emergency.push.vapid import VapidSigner

GONE = frozenset({404, 410})
PUSH_REASONS = {
    400: "push service refused the request",
    401: "push service refused our VAPID signature",
    403: "push service refused our VAPID key",
    404: "device no longer subscribed",
    410: "device no longer subscribed",
    413: "push payload too large",
    429: "push service rate limited",
}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class WebPushProvider:
    """Sends one encrypted push to one browser subscription."""

    name = "webpush"

    def __init__(self, private_key: str, subject: str, *, timeout: float = 15.0, pool_size: int = 64):
        self.signer = VapidSigner(private_key, subject)
        self.timeout = timeout
        self.http = KeepAliveHttp(pool_size)

    def send_push(self, subscription: dict, payload: dict, *, urgency: str, ttl: int) -> SendResult:
        """Encrypt `payload` for the subscription and POST it; raise ProviderError on refusal."""
        headers = {**self.signer.headers(subscription["endpoint"]), "Urgency": urgency,
                   "Content-Type": "application/octet-stream"}
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            response = WebPusher(subscription, requests_session=self.http).send(
                data=data, headers=headers, ttl=ttl, content_encoding="aes128gcm", timeout=self.timeout)
        except Unreachable as exc:
            raise ProviderError(f"push service unreachable: {exc}", temporary=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(sid=None, status="sent")
        temporary = status == 429 or status >= 500
        reason = PUSH_REASONS.get(status, f"push service answered HTTP {status}")
        raise ProviderError(f"{reason} (HTTP {status})", http_status=status, temporary=temporary,
                            retry_after=retry_after_seconds(response.headers.get("Retry-After")))
