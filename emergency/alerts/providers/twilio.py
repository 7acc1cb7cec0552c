"""The Twilio provider: SMS and voice through the official `twilio` client."""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from emergency.alerts.providers.base import CHANNELS, ProviderError, SendResult, classify
from emergency.alerts.providers.keepalive import KeepAliveHttp, Unreachable

T = TypeVar("T")

# Twilio sends a status callback for each of these; without the list it only sends `completed`.
CALL_STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


FORM = "application/x-www-form-urlencoded"


class KeptConnectionsHttpClient(TwilioHttpClient):
    """The official client's HTTP client, with the form POSTs that create messages and calls sent over
    kept HTTP/1.1 connections (providers.keepalive) instead of through requests.

    requests and urllib3 were about 1.2 ms of a text's 1.8 ms of Python on host G: at a district's 100
    texts a second, a tenth of the one core the web process has. Status fetches (GET), JSON bodies,
    query parameters, and every request when a proxy is configured (HTTPS_PROXY) still go through
    requests as the official client sends them.
    """

    def __init__(self, *, timeout: float | None = None, pool_size: int = 32) -> None:
        super().__init__(timeout=timeout)
        self.pool_size = pool_size
        self.kept = KeepAliveHttp(pool_size)
        if self.session is not None:
            # The parent only sizes the https pool; a local fake is plain http, and the
            # dispatcher's worker threads would otherwise churn through a 10-connection pool.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    def trust(self, ca_bundle: str) -> None:
        """Verify Twilio's certificate against this bundle only (REQUESTS_CA_BUNDLE), as requests does."""
        self.kept = KeepAliveHttp(self.pool_size, tls=ssl.create_default_context(cafile=ca_bundle))

    def url_for(self, url: str) -> str:
        return url

    def request(self, method: str, url: str, params: dict | None = None, data: dict | None = None,
                headers: dict | None = None, auth: tuple | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        """Send the request (to `url_for(url)`); a form POST on a kept connection, anything else by requests."""
        url = self.url_for(url)
        headers = dict(headers or {})
        if (method.upper() != "POST" or params or headers.get("Content-Type", FORM) != FORM or self.proxy
                or not isinstance(auth, tuple)):
            return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        body = urlencode({k: v for k, v in (data or {}).items() if v is not None}, doseq=True).encode()
        headers["Content-Type"] = FORM
        logged = self.logger.isEnabledFor(logging.INFO)  # the parent's lines, not formatted when nobody reads them
        if logged:
            self.log_request({"method": "POST", "url": url, "params": None, "headers": headers})
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        try:
            answer = self.kept.post(url, data=body, headers=headers, timeout=timeout)
        except Unreachable as exc:  # as requests would raise them, for the provider's one mapping of errors
            raise (requests.Timeout if exc.timed_out else requests.ConnectionError)(str(exc)) from None
        response = Response(answer.status_code, answer.text, answer.headers)
        if logged:
            self.log_response(answer.status_code, response)
        return response


class RewritingHttpClient(KeptConnectionsHttpClient):
    """Sends every request to `api_base` instead of *.twilio.com (a local fake, or a staging Twilio)."""

    def __init__(self, api_base: str, *, timeout: float | None = None, pool_size: int = 32) -> None:
        super().__init__(timeout=timeout, pool_size=pool_size)
        base = urlsplit(api_base)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError(f"api_base must look like http://host:port, got {api_base!r}")
        self._scheme = base.scheme
        self._netloc = base.netloc
        self._path_prefix = base.path.rstrip("/")

    def rewrite(self, url: str) -> str:
        """Return `url` with its scheme and host replaced by the api_base ones."""
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._path_prefix + parts.path, parts.query, parts.fragment)
        )

    url_for = rewrite


def read_environment_once(http_client: KeptConnectionsHttpClient, url: str) -> None:
    """Take the proxy (HTTPS_PROXY, NO_PROXY) and CA bundle settings from the environment now, not per send.

    requests reads them on every request by walking the whole environment, about half a millisecond
    of a send's CPU; at a district's 100 texts a second that is a twentieth of a core for nothing.
    """
    session = http_client.session
    if session is None:
        return
    if not http_client.proxy:
        http_client.proxy = requests.utils.get_environ_proxies(url)  # NO_PROXY is honoured for this host
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    if isinstance(session.verify, str):
        http_client.trust(session.verify)


class TwilioProvider:
    """Sends SMS and places calls with Twilio, mapping every failure to ProviderError."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a from_number or a messaging_service_sid to send SMS")
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.api_base = api_base
        self.timeout = timeout
        http_client = (
            RewritingHttpClient(api_base, timeout=timeout) if api_base else KeptConnectionsHttpClient(timeout=timeout)
        )
        read_environment_once(http_client, api_base or "https://api.twilio.com")
        # Only the client holds the token; it is kept off this object so that no repr,
        # log line or error message built from the provider can leak it.
        self._client = Client(account_sid, auth_token, http_client=http_client)
        # The first use imports Twilio's API modules (about 70 ms): not while the first alert waits.
        _ = self._client.messages, self._client.calls

    def __repr__(self) -> str:
        sender = self.from_number or self.messaging_service_sid
        return f"<TwilioProvider {self.account_sid} from {sender} via {self.api_base or 'api.twilio.com'}>"

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None,
                 sender: str | None = None) -> SendResult:
        """Create one Twilio message from `sender` (a pool number) or the number, or through the messaging service."""
        params: dict[str, Any] = {"to": to, "body": body}
        if sender or self.from_number:
            params["from_"] = sender or self.from_number
        else:
            params["messaging_service_sid"] = self.messaging_service_sid
        if status_callback:
            params["status_callback"] = status_callback
        message = self._call("SMS send", lambda: self._client.messages.create(**params))
        return SendResult(sid=str(message.sid), status=str(message.status))

    def place_call(self, to: str, *, twiml_url: str, status_callback: str | None = None,
                   sender: str | None = None) -> SendResult:
        """Start one Twilio call from `sender` or the number that POSTs to `twiml_url` for its TwiML."""
        if not (sender or self.from_number):
            raise ProviderError(
                "Voice calls need a Twilio from_number; a messaging service can only send SMS",
                temporary=False,
            )
        params: dict[str, Any] = {"to": to, "from_": sender or self.from_number, "url": twiml_url,
                                  "method": "POST"}
        if status_callback:
            params.update(
                status_callback=status_callback,
                status_callback_event=CALL_STATUS_EVENTS,
                status_callback_method="POST",
            )
        call = self._call("call", lambda: self._client.calls.create(**params))
        return SendResult(sid=str(call.sid), status=str(call.status))

    def fetch_status(self, channel: str, sid: str) -> tuple[str, int | None]:
        """Ask Twilio for the current status of a message ("sms") or call ("voice")."""
        if channel == "sms":
            message = self._call("message status fetch", lambda: self._client.messages(sid).fetch())
            return str(message.status), message.error_code
        if channel == "voice":
            call = self._call("call status fetch", lambda: self._client.calls(sid).fetch())
            return str(call.status), None
        raise ValueError(f"unknown channel {channel!r}, expected one of {CHANNELS}")

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except TwilioRestException as exc:
            raise _http_error(what, exc.status, exc.code, exc.msg) from exc
        except TwilioServiceException as exc:
            raise _http_error(what, exc.status, exc.code, exc.detail or exc.title) from exc
        except requests.Timeout as exc:
            raise ProviderError(f"Twilio {what} timed out after {self.timeout}s", temporary=True) from exc
        except requests.RequestException as exc:
            raise ProviderError(
                f"Twilio {what} failed: network error ({type(exc).__name__})", temporary=True
            ) from exc
        except json.JSONDecodeError as exc:
            # A 2xx that is not Twilio JSON comes from something in between (a proxy, a
            # captive portal), not from a verdict on the recipient.
            raise ProviderError(f"Twilio {what} failed: unreadable response", temporary=True) from exc
        except TwilioException as exc:
            network = isinstance(exc.__cause__ or exc.__context__, requests.RequestException | OSError)
            raise ProviderError(f"Twilio {what} failed: {exc}", temporary=network) from exc


def _http_error(what: str, http_status: int | None, code: object, detail: str | None) -> ProviderError:
    code = _as_int(code)
    shown = f"HTTP {http_status}" + (f", code {code}" if code is not None else "")
    return ProviderError(
        f"Twilio {what} failed ({shown}): {detail or 'no detail'}",
        code=code,
        http_status=http_status,
        temporary=classify(http_status, code),
    )


def _as_int(code: object) -> int | None:
    try:
        value = int(code)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    # Twilio codes have five digits; the client fills in the HTTP status when the body had none.
    return value if value >= 10000 else None
