"""A local stand-in for a browser push service (Google's, Apple's, Mozilla's), speaking the real protocol.

`FakePush` is an HTTP server that plays the part of the push service and of the devices behind it:
- `new_device()` makes a browser subscription (endpoint on this server, a P-256 key pair and an auth
  secret), exactly what `PushSubscription.toJSON()` gives in a browser;
- every POST to an endpoint must carry a VAPID token (RFC 8292) whose ES256 signature verifies with
  the key in the header, whose `aud` is this server's origin and whose `exp` is in the future and at
  most 24 hours away; a bad token is answered 401 or 403 as real push services do;
- the body must be `aes128gcm` (RFC 8188/8291): it is decrypted with the device's private key and auth
  secret (http_ece), and the JSON inside is recorded with the TTL and Urgency headers;
- `answer(device, 410)` (or 404, 413, 429 with Retry-After, 500...) makes the next pushes to a device
  fail; `latency` delays every answer, as a real round trip would.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_PAYLOAD = 4096


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen()'s backlog, read when the server is made: a fan-out opens dozens of connections at once,
    # and the default 5 made the kernel reset some of them, which the sender then rightly retried.
    request_queue_size = 1024


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One browser's subscription: what the server stores, and the secrets only the browser holds."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64url(self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                                 serialization.PublicFormat.UncompressedPoint))

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def subscription(self) -> dict:
        """The JSON a browser's `PushSubscription.toJSON()` returns."""
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass
class Received:
    """A push the service accepted and the device decrypted."""

    device: str
    payload: dict
    ttl: int
    urgency: str | None
    at: float = field(default_factory=time.monotonic)


class VapidError(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@functools.lru_cache(maxsize=1024)
def _signature_verifies(signing_input: str, raw: bytes, key: bytes) -> bool:
    """The ES256 check, once per distinct token and key: a sender reuses its token for hours, and a push
    service checks a token it has seen before from memory (the claims are still checked on every push)."""
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_vapid(header: str, origin: str, now: float | None = None) -> dict:
    """Check `Authorization: vapid t=<JWT>, k=<key>` as a push service does; returns the claims."""
    now = time.time() if now is None else now
    scheme, _, params = (header or "").partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(401, "missing VAPID authorization")
    parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    if "t" not in parts or "k" not in parts:
        raise VapidError(401, "VAPID authorization needs t= and k=")
    try:
        signing_input, _, signature = parts["t"].rpartition(".")
        header_b64, _, claims_b64 = signing_input.partition(".")
        jwt_header = json.loads(unb64url(header_b64))
        claims = json.loads(unb64url(claims_b64))
        raw = unb64url(signature)
        key = unb64url(parts["k"])
    except (ValueError, json.JSONDecodeError) as exc:
        raise VapidError(401, f"malformed VAPID token: {exc}") from None
    if jwt_header.get("alg") != "ES256" or len(raw) != 64:
        raise VapidError(401, "VAPID token must be ES256")
    try:
        verified = _signature_verifies(signing_input, raw, key)
    except ValueError as exc:
        raise VapidError(401, f"malformed VAPID key: {exc}") from None
    if not verified:
        raise VapidError(403, "VAPID signature does not verify")
    if claims.get("aud") != origin:
        raise VapidError(403, f"VAPID aud {claims.get('aud')!r} is not {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
        raise VapidError(403, "VAPID exp must be in the future and within 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise VapidError(403, "VAPID sub must be a mailto: or https: contact")
    return claims


class FakePush:
    """The push service; use as a context manager. Thread-safe; `received` is in arrival order."""

    def __init__(self, latency: float = 0.0, *, origin: str | None = None):
        """With `origin`, another server (serve_in_child's) answers there and calls `_handle`."""
        self.latency = latency
        self.devices: dict[str, Device] = {}
        self.received: list[Received] = []
        self.refused: list[tuple[str, int, str]] = []  # (device token, status, reason)
        self.answers: dict[str, deque] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler()) if origin is None else None
        self.origin = origin or f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakePush:
        if self._server is not None:
            threading.Thread(target=self._server.serve_forever, name="fake-push", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def new_device(self) -> Device:
        token = secrets.token_urlsafe(16)
        device = Device(token, f"{self.origin}/push/{token}", ec.generate_private_key(ec.SECP256R1()),
                        os.urandom(16))
        with self._lock:
            self.devices[token] = device
        return device

    def answer(self, device: Device, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """The next `times` pushes to `device` get `status` (and a Retry-After header if given)."""
        with self._lock:
            queue = self.answers.setdefault(device.token, deque())
            queue.extend([(status, retry_after)] * times)

    def for_device(self, device: Device) -> list[dict]:
        with self._lock:
            return [r.payload for r in self.received if r.device == device.token]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} pushes, got {len(self.received)}; refused: {self.refused[-3:]}")

    # -- the server ----------------------------------------------------------------------------------
    def _handle(self, token: str, headers, body: bytes) -> tuple[int, dict[str, str]]:
        now = time.monotonic()
        with self._lock:
            self.first_at = self.first_at or now
            device = self.devices.get(token)
            queue = self.answers.get(token)
            scripted = queue.popleft() if queue else None
        if device is None:
            return 404, {}
        try:
            verify_vapid(headers.get("Authorization", ""), self.origin)
        except VapidError as exc:
            self._refuse(token, exc.status, exc.reason)
            return exc.status, {}
        if headers.get("TTL") is None or not headers["TTL"].isdigit():
            self._refuse(token, 400, "missing TTL")
            return 400, {}
        if headers.get("Content-Encoding") != "aes128gcm":
            self._refuse(token, 400, "body must be aes128gcm")
            return 400, {}
        if len(body) > MAX_PAYLOAD:
            self._refuse(token, 413, "payload too large")
            return 413, {}
        if scripted is not None:
            status, retry_after = scripted
            self._refuse(token, status, "scripted")
            return status, ({"Retry-After": retry_after} if retry_after else {})
        try:
            plain = http_ece.decrypt(body, private_key=device.private_key, auth_secret=device.auth_secret,
                                     version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:  # any decryption failure is the sender's bug: say so in the test
            self._refuse(token, 400, f"cannot decrypt: {exc!r}")
            return 400, {}
        with self._lock:
            self.received.append(Received(token, payload, int(headers["TTL"]), headers.get("Urgency")))
            self.last_at = time.monotonic()
        return 201, {"Location": f"{self.origin}/message/{secrets.token_hex(8)}"}

    def _refuse(self, token: str, status: int, reason: str) -> None:
        with self._lock:
            self.refused.append((token, status, reason))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fake.latency:
                    time.sleep(fake.latency)
                if not self.path.startswith("/push/"):
                    status, extra = 404, {}
                else:
                    status, extra = fake._handle(self.path[len("/push/"):], self.headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


@contextlib.contextmanager
def fake_push(latency: float = 0.0):
    with FakePush(latency) as fake:
        yield fake


class _Headers(dict):
    """Request headers by lower-cased name, read as http.server's are: `get` and `[]` take any case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name: str):
        return super().__getitem__(name.lower())


async def _serve_connection(fake: FakePush, reader, writer) -> None:
    """One keep-alive HTTP/1.1 connection: POST /push/<token> with a Content-Length body, answered in turn."""
    import asyncio

    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
            method, path, _version = request_line.split(" ", 2)
            headers = _Headers((name.strip().lower(), value.strip())
                               for name, _, value in (line.partition(":") for line in lines))
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            if fake.latency:
                await asyncio.sleep(fake.latency)
            if method != "POST" or not path.startswith("/push/"):
                status, extra = 404, {}
            else:
                status, extra = fake._handle(path[len("/push/"):], headers, body)
            answer = [f"HTTP/1.1 {status} {'Created' if status == 201 else 'Error'}", "Content-Length: 0",
                      *(f"{name}: {value}" for name, value in extra.items())]
            writer.write(("\r\n".join(answer) + "\r\n\r\n").encode("latin-1"))
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the sender closed the connection, or stdin closed and the loop is ending
    finally:
        writer.close()


def serve_in_child(devices: int, latency: float) -> None:
    """Run a FakePush until stdin closes: print the origin and the devices' subscriptions (one JSON line),
    then answer each "stats" line with the arrival times of the pushes so far (time.monotonic(), which
    is one clock for every process on the machine). Used by bench/fanout.py.

    Here the protocol checks are the same (`FakePush._handle`: VAPID verified, every payload decrypted)
    but the server is one asyncio loop instead of a thread per connection: a push service runs on other
    machines, and http.server's thread and header parsing per request cost this machine's two cores as
    much CPU as the decryption, which the benchmark would then charge to the server it measures."""
    import asyncio
    import sys

    async def main() -> None:
        fake: FakePush | None = None

        async def connected(reader, writer) -> None:
            await _serve_connection(fake, reader, writer)

        server = await asyncio.start_server(connected, "127.0.0.1", 0, backlog=1024)
        fake = FakePush(latency, origin=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        made = [fake.new_device().subscription() for _ in range(devices)]
        print(json.dumps({"origin": fake.origin, "subscriptions": made}), flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "stats":
                with fake._lock:
                    times = sorted(r.at for r in fake.received)
                    refused = fake.refused[:3]
                print(json.dumps({"times": times, "refused": refused}), flush=True)
        server.close()

    asyncio.run(main())


if __name__ == "__main__":
    import sys

    serve_in_child(int(sys.argv[1]), float(sys.argv[2]))
