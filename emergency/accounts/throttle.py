"""Login throttling that slows a password guesser without letting a stranger lock anyone out.

Two limits, kept by Flask-Limiter (in Redis when REDIS_URL is set, so every instance counts the same
failures; in memory otherwise), both counting failed logins only:

- per account *and* device: growing delays (by default 5 failures a minute, 10 in 10 minutes, 20 an
  hour). The device is the signed device cookie a browser got from its last successful login for that
  account, or else the client's address. So a script guessing one teacher's password slows itself
  down, and the teacher still logs in from their phone, or from any other address;
- per client address: a hard limit far above a school's traffic (100 a minute, 1,000 an hour).

Nothing locks an account. The client address is the peer's, or the X-Forwarded-For entry that
TRUSTED_PROXIES says to trust (werkzeug's ProxyFix, set up in the app factory).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter, RequestLimit
from itsdangerous import BadSignature, URLSafeSerializer

from emergency.errors import error_body

DEVICE_COOKIE = "emergency_device"
_DEVICE_SALT = "login-device"
_DEVICE_COOKIE_DAYS = 365


def client_address() -> str:
    return request.remote_addr or "unknown"


def _login_email() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return email.strip().lower() if isinstance(email, str) else ""


def _email_digest(email: str) -> str:
    # Storage keys never hold an email (they may sit in a shared Redis).
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def _devices() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_DEVICE_SALT)


def _known_device(email: str) -> str | None:
    """The device id of a valid device cookie issued for this account, if the request carries one."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        account, device = _devices().loads(cookie)
    except (BadSignature, ValueError, TypeError):
        return None
    return device if account == _email_digest(email) and isinstance(device, str) else None


def account_key() -> str:
    """The account's failures, counted per device: the guesser's attempts never slow the owner's phone."""
    email = _login_email()
    if not email:
        return ""  # Flask-Limiter skips a limit with an empty key; the request is a 422 anyway
    device = _known_device(email)
    where = f"device:{device}" if device else f"address:{client_address()}"
    return f"account:{_email_digest(email)}:{where}"


def remember_device(response: Response, email: str) -> None:
    """After a successful login, give the browser a device cookie for this account."""
    device = _known_device(email) or secrets.token_urlsafe(16)
    response.set_cookie(DEVICE_COOKIE, _devices().dumps([_email_digest(email), device]),
                        max_age=_DEVICE_COOKIE_DAYS * 86400, httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/api/v1/auth/login")


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _breached(limit: RequestLimit) -> Response:
    wait = max(1, math.ceil(limit.reset_at - time.time()))
    body = error_body(429, "too_many_requests", f"Too many failed logins; try again in {wait} seconds.",
                      retry_after=wait)
    response = jsonify(body)
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


# A Redis that is down must not stop anyone logging in during an emergency: count in memory meanwhile.
limiter = Limiter(key_func=client_address, strategy="moving-window", on_breach=_breached,
                  in_memory_fallback_enabled=True, swallow_errors=True)

login_limits = [
    limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], key_func=account_key,
                  deduct_when=_failed, scope="login-account"),
    limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], key_func=client_address,
                  deduct_when=_failed, scope="login-address"),
]


def init_throttle(app: Flask) -> None:
    """Count login failures in Redis when the app has one, in memory otherwise."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "emergency")
    limiter.init_app(app)
