"""A local stand-in for api.twilio.com that the real `twilio` client can talk to.

`FakeTwilio` serves the four REST endpoints the product uses (create/fetch Messages and Calls),
checks Basic auth, answers in Twilio's JSON shapes, and then plays the part of Twilio's network:
it advances each message and call through its statuses and POSTs signed status callbacks, which
can be lost, duplicated or reordered on request. It can also send signed inbound webhooks (an
SMS reply, a key press) the way Twilio calls a district's endpoints.

`CallbackSink` is a tiny local HTTP server that records whatever is POSTed to it, for tests that
need to receive those callbacks without running the app.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-token"
# Twilio's magic "valid sender" test number; also the number inbound SMS are addressed to.
DEFAULT_PHONE_NUMBER = "+15005550006"

SMS_FINAL_STATUSES = ("delivered", "undelivered", "failed")
CALL_FINAL_STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})

# The error code Twilio reports with an SMS that ends undelivered/failed, unless a test picks one.
DEFAULT_SMS_ERROR_CODES = {"undelivered": 30007, "failed": 30008}

# What each knob is set to by the constructor and by reset(); see FakeTwilio's docstring.
KNOB_DEFAULTS: dict[str, Any] = {
    "latency": 0.0,
    "callbacks": True,
    "duplicate_callbacks": False,
    "reorder_callbacks": False,
    "final_sms_status": "delivered",
    "final_call_status": "completed",
    "progress": True,
    "callback_interval": 0.01,
    "callback_timeout": 5.0,
    "max_concurrency": None,
    "enforce_opt_out": True,
    "call_duration": 12,
}

_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
_API_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/(?P<kind>Messages|Calls)(?:/(?P<sid>[^/.]+))?\.json$"
)
# Which StatusCallbackEvent asks for a callback about each call status.
_CALL_EVENT_FOR_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    **{status: "completed" for status in CALL_FINAL_STATUSES},
}
_ERROR_MESSAGES = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21211: "The 'To' number {to} is not a valid phone number.",
    21213: "No 'From' number is specified",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


# (status, error code, callback params, whether the requested callback events include it)
_Step = tuple[str, int | None, dict[str, str], bool]


def new_sid(prefix: str) -> str:
    """Return a Twilio-shaped SID: the two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


class _ApiError(Exception):
    def __init__(self, http_status: int, code: int, message: str | None = None, **fields: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message or _ERROR_MESSAGES.get(code, "Error").format(**fields)

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.http_status,
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out, or a connection closed by stop(), is part of the test.
        if isinstance(sys.exc_info()[1], ConnectionError | OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections from a test's client must not pin threads forever.
    timeout = 30
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.owner._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.owner._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.owner._handle(self, "DELETE")

    def read_form(self) -> dict[str, list[str]]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True)

    def respond(self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _LocalServer:
    """Start/stop plumbing shared by FakeTwilio and CallbackSink: one threaded server on 127.0.0.1."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.base_url = ""

    def start(self) -> Any:
        """Start serving (again on the same port after a stop()); return self."""
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self._port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self._port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections, so clients see the server as down."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Handler threads outlive shutdown(); without this a pooled keep-alive connection
        # would keep getting answers from a "stopped" server.
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def _handle(self, handler: _Handler, method: str) -> None:
        raise NotImplementedError


class FakeTwilio(_LocalServer):
    """A fake api.twilio.com on 127.0.0.1, plus Twilio's side of status callbacks and webhooks.

    Behaviour knobs (plain attributes, safe to change while requests are in flight; `configure()`
    sets several at once and rejects unknown names; `reset()` restores the constructor values):

    - latency: seconds each create request sleeps before it is handled. The message or call is
      still accepted when the client has already timed out, as with a slow real Twilio.
    - callbacks: POST status callbacks (False simulates lost callbacks; statuses still advance).
    - duplicate_callbacks: POST every status callback twice.
    - reorder_callbacks: POST the final status first, then the intermediate ones.
    - final_sms_status: "delivered" | "undelivered" | "failed".
    - final_call_status: "completed" | "no-answer" | "busy" | "failed" | "canceled".
    - progress: advance statuses after acceptance (False leaves everything "queued", as when
      Twilio's queue is stuck; set_message_status() then moves them).
    - callback_interval: seconds before each status step, so callbacks arrive after the API answer.
    - callback_timeout: seconds the fake waits for the app to answer a callback.
    - max_concurrency: creates in flight beyond this get HTTP 429 / 20429 (Twilio's
      concurrency limit); None for no limit.
    - enforce_opt_out: an inbound STOP (send_inbound_sms) makes later SMS to that number fail
      with 21610 until START, as Twilio does.
    - call_duration: CallDuration reported for completed calls.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        phone_number: str = DEFAULT_PHONE_NUMBER,
        **knobs: Any,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.phone_number = phone_number
        unknown = set(knobs) - set(KNOB_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown FakeTwilio knobs: {sorted(unknown)}")
        self._defaults = {**KNOB_DEFAULTS, **knobs}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._routes: list[tuple[str, str]] = []
        # Not part of _clear(): requests may be in flight across a reset().
        self._in_flight = 0
        self._creates_in_flight = 0
        self._clear()
        self.configure(**self._defaults)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        """Start serving (on the same port again after stop()); return self."""
        if self.running:
            return self
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fake-twilio-callbacks")
        return super().start()

    def stop(self) -> None:
        """Stop serving; pending status progressions and callbacks are dropped."""
        self._stopping.set()
        super().stop()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    # -- controls ----------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> FakeTwilio:
        """Set behaviour knobs by name (see the class docstring); return self."""
        unknown = set(knobs) - set(KNOB_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown FakeTwilio knobs: {sorted(unknown)}")
        if knobs.get("final_sms_status", "delivered") not in SMS_FINAL_STATUSES:
            raise ValueError(f"final_sms_status must be one of {SMS_FINAL_STATUSES}")
        if knobs.get("final_call_status", "completed") not in CALL_FINAL_STATUSES:
            raise ValueError(f"final_call_status must be one of {CALL_FINAL_STATUSES}")
        for name, value in knobs.items():
            setattr(self, name, value)
        return self

    def reset(self) -> None:
        """Forget every message, call, callback, failure rule, route and opt-out; restore the knobs."""
        with self._lock:
            self._clear()
            self._routes = []
            self.configure(**self._defaults)
            self._changed.notify_all()

    def fail_next(self, n: int = 1, http_status: int = 429, code: int | None = None) -> None:
        """Make the next `n` create requests fail with this HTTP status (and Twilio code)."""
        if code is None:
            code = 20429 if http_status == 429 else 20503 if http_status == 503 else 20500
        with self._lock:
            self._fail_next.extend([(http_status, code)] * n)

    def fail_number(self, number: str, code: int = 21211, http_status: int = 400) -> None:
        """Make every create to `number` fail with this Twilio error (e.g. 21211, 21610, 21614)."""
        with self._lock:
            self._failing_numbers[number] = (http_status, code)

    def set_outcome(self, number: str, status: str, error_code: int | None = None) -> None:
        """Make messages or calls to `number` end in `status` instead of the global final status."""
        if status not in SMS_FINAL_STATUSES + CALL_FINAL_STATUSES:
            raise ValueError(f"not a final status: {status!r}")
        with self._lock:
            self._outcomes[number] = (status, error_code)

    def set_message_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Set what a fetch of message `sid` returns (KeyError if the fake never accepted it)."""
        with self._lock:
            self._set_status(self._messages[sid], status, error_code)

    def set_call_status(self, sid: str, status: str) -> None:
        """Set what a fetch of call `sid` returns (KeyError if the fake never accepted it)."""
        with self._lock:
            self._set_status(self._calls[sid], status, None)

    def route(self, public_base_url: str, local_base_url: str) -> None:
        """Deliver callbacks and webhooks for `public_base_url` to `local_base_url`, like a proxy.

        The signature still covers the public URL, the one Twilio was configured with.
        """
        with self._lock:
            self._routes.append((public_base_url.rstrip("/"), local_base_url.rstrip("/")))
            self._routes.sort(key=lambda pair: len(pair[0]), reverse=True)

    # -- what happened -----------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message, oldest first (copies)."""
        with self._lock:
            return [dict(record) for record in self._messages.values()]

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every accepted call, oldest first (copies)."""
        with self._lock:
            return [dict(record) for record in self._calls.values()]

    @property
    def callback_log(self) -> list[dict[str, Any]]:
        """Every status callback POSTed: url, params, status_code or error, sent_at."""
        with self._lock:
            return [dict(entry) for entry in self._callback_log]

    @property
    def rejections(self) -> list[dict[str, Any]]:
        """Every refused create: kind, to, http_status, code."""
        with self._lock:
            return [dict(entry) for entry in self._rejections]

    @property
    def requests(self) -> int:
        """How many HTTP requests the API endpoints received, failed ones included."""
        with self._lock:
            return self._request_count

    @property
    def opted_out(self) -> set[str]:
        """Numbers that replied STOP and have not replied START since."""
        with self._lock:
            return set(self._opted_out)

    def messages_to(self, number: str) -> list[dict[str, Any]]:
        """Accepted messages addressed to `number`."""
        return [message for message in self.messages if message["to"] == number]

    def calls_to(self, number: str) -> list[dict[str, Any]]:
        """Accepted calls placed to `number`."""
        return [call for call in self.calls if call["to"] == number]

    def message(self, sid: str) -> dict[str, Any]:
        """One accepted message by SID (KeyError if unknown)."""
        with self._lock:
            return dict(self._messages[sid])

    def call(self, sid: str) -> dict[str, Any]:
        """One accepted call by SID (KeyError if unknown)."""
        with self._lock:
            return dict(self._calls[sid])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` is true; return False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            # Evaluated without the lock: a predicate may query the app's database, and the
            # fake must keep serving meanwhile.
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `n` messages were accepted and return them all; AssertionError if not."""
        if not self.wait_for(lambda: len(self._messages) >= n, timeout):
            raise AssertionError(f"expected {n} messages within {timeout}s, got {len(self._messages)}")
        return self.messages

    def wait_for_calls(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `n` calls were placed and return them all; AssertionError if not."""
        if not self.wait_for(lambda: len(self._calls) >= n, timeout):
            raise AssertionError(f"expected {n} calls within {timeout}s, got {len(self._calls)}")
        return self.calls

    def wait_for_callbacks(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `n` status callbacks were POSTed and return the log; AssertionError if not."""
        if not self.wait_for(lambda: len(self._callback_log) >= n, timeout):
            raise AssertionError(
                f"expected {n} status callbacks within {timeout}s, got {len(self._callback_log)}"
            )
        return self.callback_log

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks: requests, creates, accepted, rejected, max_in_flight, rates."""
        with self._lock:
            accepted_at = sorted(
                record["accepted_at"] for record in [*self._messages.values(), *self._calls.values()]
            )
            span = accepted_at[-1] - accepted_at[0] if len(accepted_at) > 1 else 0.0
            return {
                "requests": self._request_count,
                "creates": self._create_count,
                "accepted": len(accepted_at),
                "rejected": len(self._rejections),
                "messages": len(self._messages),
                "calls": len(self._calls),
                "callbacks": len(self._callback_log),
                "max_in_flight": self._max_in_flight,
                "accepted_at": accepted_at,
                # Accepted creates per second between the first and the last; None below two.
                "rate_per_second": (len(accepted_at) - 1) / span if span > 0 else None,
            }

    # -- Twilio calling the district ---------------------------------------------------------

    def post_signed(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        auth_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> requests.Response:
        """POST form `params` to `url` signed the way Twilio signs webhooks (e.g. a Gather's Digits).

        `auth_token` signs with another token (to test rejection); `route()` applies.
        """
        signature = RequestValidator(auth_token or self.auth_token).compute_signature(url, dict(params))
        sent_headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            **(headers or {}),
        }
        return requests.post(self._routed(url), data=dict(params), headers=sent_headers, timeout=timeout)

    def send_inbound_sms(
        self, webhook_url: str, from_: str, body: str, to: str | None = None, **extra: str
    ) -> requests.Response:
        """Deliver an inbound SMS to the district's webhook, signed; STOP/START update opt-outs."""
        word = body.strip().upper()
        with self._lock:
            if word in OPT_OUT_WORDS:
                self._opted_out.add(from_)
            elif word in OPT_IN_WORDS:
                self._opted_out.discard(from_)
        sid = new_sid("SM")
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to or self.phone_number,
            "Body": body,
            "NumSegments": "1",
            "NumMedia": "0",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
            **extra,
        }
        return self.post_signed(webhook_url, params)

    # -- the REST API ------------------------------------------------------------------------

    def _clear(self) -> None:
        self._messages: dict[str, dict[str, Any]] = {}
        self._calls: dict[str, dict[str, Any]] = {}
        self._callback_log: list[dict[str, Any]] = []
        self._rejections: list[dict[str, Any]] = []
        self._fail_next: deque[tuple[int, int]] = deque()
        self._failing_numbers: dict[str, tuple[int, int]] = {}
        self._outcomes: dict[str, tuple[str, int | None]] = {}
        self._opted_out: set[str] = set()
        self._request_count = 0
        self._create_count = 0
        self._max_in_flight = 0

    def _handle(self, handler: _Handler, method: str) -> None:
        with self._lock:
            self._request_count += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        after: Callable[[], None] | None = None
        try:
            form = handler.read_form()
            status, payload, after = self._dispatch(handler, method, form)
        except _ApiError as error:
            status, payload = error.http_status, error.payload()
        except Exception as exc:
            # A bug in the fake should reach the test as a readable 500, not a dropped connection.
            status, payload = 500, _ApiError(500, 20500, f"fake Twilio error: {exc!r}").payload()
        finally:
            with self._lock:
                self._in_flight -= 1
                self._changed.notify_all()
        if self._stopping.is_set():
            # Twilio "went down" mid-request: the client sees the connection drop.
            handler.close_connection = True
            return
        extra = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
        handler.respond(status, json.dumps(payload).encode(), "application/json; charset=utf-8", extra)
        # Only after the answer is written, so the app usually knows the SID before its first
        # callback arrives (as with real Twilio; the app must still cope when it does not).
        if after is not None:
            self._submit(after)

    def _dispatch(
        self, handler: _Handler, method: str, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], Callable[[], None] | None]:
        match = _API_PATH_RE.match(urlsplit(handler.path).path)
        if not match:
            raise _ApiError(404, 20404)
        self._check_auth(handler.headers.get("Authorization"))
        if match["account"] != self.account_sid:
            raise _ApiError(404, 20404)
        kind, sid = match["kind"], match["sid"]
        if method == "POST" and sid is None:
            return self._create(kind, form)
        if method == "GET" and sid is not None:
            return 200, self._fetch(kind, sid), None
        raise _ApiError(405, 20004)

    def _check_auth(self, header: str | None) -> None:
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        scheme, _, encoded = (header or "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True)
        except ValueError:
            given = b""
        if scheme.lower() != "basic" or not secrets.compare_digest(given, expected):
            raise _ApiError(401, 20003)

    def _fetch(self, kind: str, sid: str) -> dict[str, Any]:
        with self._lock:
            record = (self._messages if kind == "Messages" else self._calls).get(sid)
            if record is None:
                raise _ApiError(404, 20404)
            return self._message_json(record) if kind == "Messages" else self._call_json(record)

    def _create(
        self, kind: str, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], Callable[[], None] | None]:
        received_at = time.monotonic()  # when the request arrived: what a provider's rate limit counts
        to = _first(form, "To")
        with self._lock:
            self._create_count += 1
            self._creates_in_flight += 1
            too_many = self.max_concurrency is not None and self._creates_in_flight > self.max_concurrency
        try:
            if self.latency > 0:
                self._stopping.wait(self.latency)
            with self._lock:
                if too_many:
                    raise _ApiError(429, 20429)
                if self._fail_next:
                    http_status, code = self._fail_next.popleft()
                    raise _ApiError(http_status, code, to=to or "")
            if kind == "Messages":
                record = self._accept_message(form, received_at)
                return 201, self._message_json(record), lambda: self._progress_message(record["sid"])
            record = self._accept_call(form, received_at)
            return 201, self._call_json(record), lambda: self._progress_call(record["sid"])
        except _ApiError as error:
            with self._lock:
                self._rejections.append(
                    {"kind": kind, "to": to, "http_status": error.http_status, "code": error.code}
                )
            raise
        finally:
            with self._lock:
                self._creates_in_flight -= 1

    def _check_recipient(self, to: str | None, missing_code: int) -> str:
        if not to:
            raise _ApiError(400, missing_code)
        if not _E164_RE.match(to):
            raise _ApiError(400, 21211, to=to)
        with self._lock:
            rule = self._failing_numbers.get(to)
        if rule is not None:
            raise _ApiError(rule[0], rule[1], to=to)
        return to

    def _accept_message(self, form: dict[str, list[str]], received_at: float) -> dict[str, Any]:
        to = self._check_recipient(_first(form, "To"), 21604)
        sender = _first(form, "From")
        service = _first(form, "MessagingServiceSid")
        if not sender and not service:
            raise _ApiError(400, 21603)
        body = _first(form, "Body")
        if not body:
            raise _ApiError(400, 21602)
        if len(body) > 1600:
            raise _ApiError(400, 21617)
        now = _now_rfc2822()
        with self._lock:
            if self.enforce_opt_out and to in self._opted_out:
                raise _ApiError(400, 21610, to=to)
            record = {
                "sid": new_sid("SM"),
                "to": to,
                # A messaging service picks a sender from its pool; the fake's pool is one number.
                "from": sender or self.phone_number,
                "body": body,
                "messaging_service_sid": service,
                "status_callback": _first(form, "StatusCallback"),
                "status": "queued",
                "error_code": None,
                "num_segments": 1 if len(body) <= 160 else math.ceil(len(body) / 153),
                "date_created": now,
                "date_updated": now,
                "received_at": received_at,
                "accepted_at": time.monotonic(),
            }
            self._messages[record["sid"]] = record
            self._changed.notify_all()
            return record

    def _accept_call(self, form: dict[str, list[str]], received_at: float) -> dict[str, Any]:
        to = self._check_recipient(_first(form, "To"), 21201)
        sender = _first(form, "From")
        if not sender:
            raise _ApiError(400, 21213)
        url = _first(form, "Url")
        twiml = _first(form, "Twiml")
        if not url and not twiml:
            raise _ApiError(400, 21205)
        now = _now_rfc2822()
        with self._lock:
            record = {
                "sid": new_sid("CA"),
                "to": to,
                "from": sender,
                "url": url,
                "twiml": twiml,
                "method": _first(form, "Method") or "POST",
                "status_callback": _first(form, "StatusCallback"),
                # Without StatusCallbackEvent Twilio only reports the end of the call.
                "status_callback_event": form.get("StatusCallbackEvent") or ["completed"],
                "status": "queued",
                "duration": None,
                "date_created": now,
                "date_updated": now,
                "received_at": received_at,
                "accepted_at": time.monotonic(),
            }
            self._calls[record["sid"]] = record
            self._changed.notify_all()
            return record

    def _message_json(self, record: dict[str, Any]) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{record['sid']}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": record["body"],
            "date_created": record["date_created"],
            "date_sent": record.get("date_sent"),
            "date_updated": record["date_updated"],
            "direction": "outbound-api",
            "error_code": record["error_code"],
            "error_message": None,
            "from": record["from"],
            "messaging_service_sid": record["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(record["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": record["sid"],
            "status": record["status"],
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": record["to"],
            "uri": f"{uri}.json",
        }

    def _call_json(self, record: dict[str, Any]) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{record['sid']}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": record["date_created"],
            "date_updated": record["date_updated"],
            "direction": "outbound-api",
            "duration": record["duration"],
            "end_time": None,
            "forwarded_from": None,
            "from": record["from"],
            "from_formatted": record["from"],
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": record["sid"],
            "start_time": None,
            "status": record["status"],
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "to": record["to"],
            "to_formatted": record["to"],
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }

    # -- Twilio's network: statuses and callbacks --------------------------------------------

    def _submit(self, task: Callable[[], None]) -> None:
        executor = self._executor
        if executor is None or self._stopping.is_set():
            return
        # RuntimeError: stop() shut the pool down between the check and the submit.
        with contextlib.suppress(RuntimeError):
            executor.submit(task)

    def _set_status(self, record: dict[str, Any], status: str, error_code: int | None) -> None:
        with self._lock:
            record["status"] = status
            record["date_updated"] = _now_rfc2822()
            if status == "sent":
                record["date_sent"] = record["date_updated"]
            if "error_code" in record:
                record["error_code"] = error_code
            if "duration" in record and status in CALL_FINAL_STATUSES:
                record["duration"] = record.get("planned_duration", "0")
            self._changed.notify_all()

    def _progress_message(self, sid: str) -> None:
        with self._lock:
            if not self.progress:
                return
            record = self._messages[sid]
            final, error_code = self._outcomes.get(record["to"], (self.final_sms_status, None))
            if final in ("undelivered", "failed") and error_code is None:
                error_code = DEFAULT_SMS_ERROR_CODES[final]
            statuses = ["queued", final] if final == "failed" else ["queued", "sent", final]
            base = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": self.account_sid,
                "From": record["from"],
                "To": record["to"],
                "ApiVersion": API_VERSION,
            }
            if record["messaging_service_sid"]:
                base["MessagingServiceSid"] = record["messaging_service_sid"]
        steps: list[_Step] = []
        for status in statuses:
            params = {**base, "MessageStatus": status, "SmsStatus": status}
            code = error_code if status == final else None
            if code is not None:
                params["ErrorCode"] = str(code)
            steps.append((status, code, params, True))
        self._play(record, steps)

    def _progress_call(self, sid: str) -> None:
        with self._lock:
            if not self.progress:
                return
            record = self._calls[sid]
            final, _ = self._outcomes.get(record["to"], (self.final_call_status, None))
            statuses = {
                "completed": ["initiated", "ringing", "in-progress", "completed"],
                "no-answer": ["initiated", "ringing", "no-answer"],
                "busy": ["initiated", "ringing", "busy"],
            }.get(final, ["initiated", final])
            events = set(record["status_callback_event"])
            duration = str(self.call_duration) if final == "completed" else "0"
            # Known from the start, like the outcome; fetches only show it once the call has ended.
            record["planned_duration"] = duration
        steps: list[_Step] = []
        for number, status in enumerate(statuses):
            params = {
                "CallSid": sid,
                "AccountSid": self.account_sid,
                "From": record["from"],
                "To": record["to"],
                "Caller": record["from"],
                "Called": record["to"],
                "CallStatus": status,
                "Direction": "outbound-api",
                "ApiVersion": API_VERSION,
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(number),
                "Timestamp": _now_rfc2822(),
            }
            if status in CALL_FINAL_STATUSES:
                params["CallDuration"] = duration
            steps.append((status, None, params, _CALL_EVENT_FOR_STATUS[status] in events))
        self._play(record, steps)

    def _play(self, record: dict[str, Any], steps: list[_Step]) -> None:
        """Advance `record` through `steps` and POST the callbacks the knobs ask for."""
        posts = list(steps)
        reorder = self.reorder_callbacks and len(posts) > 1
        if reorder:
            # The final status is already true when its callback overtakes the others.
            final_status, final_code, _, _ = posts[-1]
            self._set_status(record, final_status, final_code)
            posts = [posts[-1], *posts[:-1]]
        repeat = 2 if self.duplicate_callbacks else 1
        for status, code, params, wanted in posts:
            if self._stopping.wait(self.callback_interval):
                return
            if not reorder:
                self._set_status(record, status, code)
            if wanted and self.callbacks and record["status_callback"]:
                for _ in range(repeat):
                    self._post_callback(record["status_callback"], params)

    def _post_callback(self, url: str, params: dict[str, str]) -> None:
        entry: dict[str, Any] = {"url": url, "params": params, "status_code": None, "error": None}
        try:
            response = self.post_signed(url, params, timeout=self.callback_timeout)
            entry["status_code"] = response.status_code
        except requests.RequestException as exc:
            # Twilio does not retry a failed status callback either.
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["sent_at"] = time.monotonic()
        with self._lock:
            self._callback_log.append(entry)
            self._changed.notify_all()

    def _routed(self, url: str) -> str:
        with self._lock:
            routes = list(self._routes)
        for public, local in routes:
            if url == public or url.startswith(public + "/") or url.startswith(public + "?"):
                return local + url[len(public) :]
        return url


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


class CallbackSink(_LocalServer):
    """A local HTTP server that records every request sent to it (status callbacks, webhooks)."""

    def __init__(self, status_code: int = 204, body: str = "", content_type: str = "text/plain") -> None:
        super().__init__()
        self.status_code = status_code
        self.body = body
        self.content_type = content_type
        self._received: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def __enter__(self) -> CallbackSink:
        return self.start()

    def url(self, path: str = "/status") -> str:
        """The full URL of `path` on this sink."""
        return self.base_url + path

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every request: method, path, url, headers, form (lists), params (first values), at."""
        with self._changed:
            return list(self._received)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until `n` requests arrived and return them all; AssertionError if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= n, timeout):
                raise AssertionError(f"expected {n} requests within {timeout}s, got {len(self._received)}")
            return list(self._received)

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._changed:
            self._received.clear()

    def _handle(self, handler: _Handler, method: str) -> None:
        form = handler.read_form()
        entry = {
            "method": method,
            "path": urlsplit(handler.path).path,
            "url": self.base_url + handler.path,
            "headers": dict(handler.headers.items()),
            "form": form,
            "params": {name: values[0] for name, values in form.items()},
            "at": time.monotonic(),
        }
        with self._changed:
            self._received.append(entry)
            self._changed.notify_all()
        handler.respond(self.status_code, self.body.encode(), self.content_type)
