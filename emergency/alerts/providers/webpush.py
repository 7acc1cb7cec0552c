"""Web Push (RFC 8030) through pywebpush: encrypted (RFC 8291, aes128gcm), signed with VAPID (RFC 8292).

What the push service answers decides what happens to the alert:
201 (or any 2xx) accepted -> sent; 404/410 the subscription is gone -> failed, and the device is
removed; 400/413 and other 4xx -> failed for good; 429 and 5xx -> retried, honouring Retry-After.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from pywebpush import WebPusher

from emergency.alerts.providers.base import ProviderError, SendResult
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


class PushResponse:
    """The little of a response pywebpush and we read."""

    def __init__(self, status: int, headers, text: str):
        self.status_code, self.headers, self.text = status, headers, text


class PushUnreachable(Exception):
    """The push service could not be asked: no connection, a reset, a timeout."""


class PushHttp:
    """Keep-alive HTTP/1.1 connections (the standard library's http.client) with the `post()` pywebpush calls.

    A fan-out is thousands of POSTs to the same two or three push services, so connections are kept
    per service and reused by whichever send thread is free; a TLS handshake each would dominate.
    requests, and urllib3 beneath it, cost two to five times http.client's Python per request (URL
    parsing, retry and timeout objects, response wrappers), which at thousands of pushes on one
    interpreter was the largest share of a push's CPU.
    """

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()

    def post(self, url: str, *, data: bytes | None = None, headers: dict | None = None,
             timeout: float | None = None) -> PushResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise PushUnreachable(f"not an http(s) URL: {url[:80]!r}")
        service = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reused = self._take(service)
        for connection in ([reused] if reused else []) + [None]:
            fresh = connection is None
            if fresh:
                connection = self._connect(service, timeout)
            else:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
            try:
                connection.request("POST", path, body=data, headers=headers or {})
                response = connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                connection.close()
                if fresh:
                    raise PushUnreachable(type(exc).__name__) from None
                # The service closed a connection that sat idle (a keep-alive timeout) before it read
                # the request: the push was not taken, so it goes again on a new connection.
                continue
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise PushUnreachable(type(exc).__name__) from None
            if response.will_close:
                connection.close()
            else:
                self._give_back(service, connection)
            return PushResponse(response.status, response.headers, body.decode("utf-8", "replace")[:300])
        raise AssertionError("unreachable: the last attempt is on a fresh connection")

    def _connect(self, service: tuple[str, str, int], timeout: float | None) -> http.client.HTTPConnection:
        scheme, host, port = service
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _take(self, service: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        """An idle connection to the service that the service has not closed meanwhile, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(service)
                connection = idle.pop() if idle else None
            if connection is None or (connection.sock is not None and not _dropped(connection.sock)):
                return connection
            connection.close()

    def _give_back(self, service: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(service, [])
            if len(idle) < self.pool_size:
                idle.append(connection)
                return
        connection.close()


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket was closed by the other side (it reads as ready, with EOF)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class WebPushProvider:
    """Sends one encrypted push to one browser subscription."""

    name = "webpush"

    def __init__(self, private_key: str, subject: str, *, timeout: float = 15.0, pool_size: int = 64):
        self.signer = VapidSigner(private_key, subject)
        self.timeout = timeout
        self.http = PushHttp(pool_size)

    def send_push(self, subscription: dict, payload: dict, *, urgency: str, ttl: int) -> SendResult:
        """Encrypt `payload` for the subscription and POST it; raise ProviderError on refusal."""
        headers = {**self.signer.headers(subscription["endpoint"]), "Urgency": urgency,
                   "Content-Type": "application/octet-stream"}
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            response = WebPusher(subscription, requests_session=self.http).send(
                data=data, headers=headers, ttl=ttl, content_encoding="aes128gcm", timeout=self.timeout)
        except PushUnreachable as exc:
            raise ProviderError(f"push service unreachable: {exc}", temporary=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(sid=None, status="sent")
        temporary = status == 429 or status >= 500
        reason = PUSH_REASONS.get(status, f"push service answered HTTP {status}")
        raise ProviderError(f"{reason} (HTTP {status})", http_status=status, temporary=temporary,
                            retry_after=retry_after_seconds(response.headers.get("Retry-After")))
