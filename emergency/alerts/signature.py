"""Check and compute X-Twilio-Signature, the HMAC Twilio puts on every webhook it sends."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def is_valid_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    """Return True if `signature` is Twilio's signature of `url` and the POSTed `params`."""
    # An empty token would make the HMAC key public: anyone could forge a "valid" request.
    if not signature or not auth_token:
        return False
    # RequestValidator compares in constant time and accepts the URL with or without an
    # explicit default port, since Twilio is inconsistent about which one it signs.
    return bool(RequestValidator(auth_token).validate(url, params, signature))


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Compute the X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, params)


def public_url(public_base_url: str, path: str, query_string: str | bytes = "") -> str:
    """Build the URL Twilio signed: the configured public base, the path and the raw query string."""
    # Twilio signs the URL it was configured with; behind a proxy the Host header and scheme the
    # app sees differ from it, so the base must come from configuration, never from the request.
    if isinstance(query_string, bytes):
        query_string = query_string.decode("utf-8")
    url = public_base_url.rstrip("/") + "/" + path.lstrip("/")
    return f"{url}?{query_string}" if query_string else url
