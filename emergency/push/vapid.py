"""VAPID (RFC 8292): the key pair that signs every push, and the signed headers, cached per push service."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

# Push services accept a JWT that expires within 24 h; sign for 12 h and renew an hour before.
TOKEN_LIFETIME = 12 * 3600
RENEW_BEFORE = 3600
DEMO_KEY_FILE = "vapid-private-key.txt"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_private_key() -> str:
    """A new P-256 private key as 43 base64url characters (what VAPID_PRIVATE_KEY holds)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def load(private_key: str) -> Vapid02:
    """The signer for a VAPID_PRIVATE_KEY (raw or DER, base64url)."""
    return Vapid02.from_string(private_key)


def public_key(private_key: str) -> str:
    """The browser's `applicationServerKey`: the uncompressed public point, base64url."""
    point = load(private_key).public_key.public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)
    return _b64url(point)


def demo_private_key(instance_path: str) -> str:
    """A key kept in the instance folder, so a laptop or demo works without settings and keeps its devices."""
    path = Path(instance_path) / DEMO_KEY_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    path.write_text(key + "\n", encoding="ascii")
    path.chmod(0o600)
    return key


def audience(endpoint: str) -> str:
    """The push service's origin, which a VAPID token is bound to (`aud`)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidSigner:
    """Signs one token per push service and reuses it: ES256 per push would cost a signature each."""

    def __init__(self, private_key: str, subject: str, clock=time.time):
        self.vapid = load(private_key)
        self.subject = subject
        self.clock = clock
        self._cache: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def headers(self, endpoint: str) -> dict:
        """The `Authorization: vapid t=...,k=...` header for a push to `endpoint`."""
        aud = audience(endpoint)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(aud)
            if cached is None or cached[0] - now < RENEW_BEFORE:
                expires = int(now) + TOKEN_LIFETIME
                cached = (expires, self.vapid.sign({"aud": aud, "exp": expires, "sub": self.subject}))
                self._cache[aud] = cached
            return dict(cached[1])


def configured_private_key(config) -> str | None:
    """VAPID_PRIVATE_KEY, or on a laptop, demo or test instance a key kept in its folder; None: push is off."""
    if config["VAPID_PRIVATE_KEY"]:
        return config["VAPID_PRIVATE_KEY"]
    if config["ENV"] in ("development", "demo", "test"):
        return demo_private_key(config["INSTANCE_PATH"])
    return None
