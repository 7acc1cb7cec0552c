"""Kept HTTP/1.1 connections for the thousands of small POSTs a fan-out makes to one service.

A fan-out is thousands of small POSTs to the same two or three push services, and a hundred texts a
second to Twilio, all from one interpreter, so this client does only that: one request written in
one send, and an answer read by status line, headers and a Content-Length or chunked body. requests
cost five times that in Python per request and http.client twice (URL, header and response objects,
the email parser for headers), which was the largest share of a push's CPU after its encryption and
most of a text's. Connections are kept per service and reused by whichever send thread is free; TLS
(with the system's CAs, or a given bundle, and hostname checks) is the standard library's.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit


class HttpAnswer:
    """The little of a response its callers read (pywebpush, the Twilio client, the providers)."""

    def __init__(self, status: int, headers: ResponseHeaders, content: bytes):
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class ResponseHeaders(dict):
    """Response headers by lower-cased name; `get` takes any case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class Unreachable(Exception):
    """The service could not be asked: no connection, a reset, a timeout, a reply that is not HTTP."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class _Dropped(Exception):
    """The service closed a kept connection before any byte of an answer: the request was not taken."""


MAX_HEAD = 64 * 1024  # a response head longer than this is not a push service's or Twilio's
MAX_BODY = 1024 * 1024  # a longer body is not read to keep its connection: the connection is closed
# A kept connection used this recently is taken without asking the kernel whether the service closed
# it: that select() was 8 % of a push's CPU under gevent, keep-alive timeouts are many seconds, and a
# request that a just-closed connection drops is sent again on a new one all the same.
TRUSTED_IDLE_SECONDS = 1.0


class KeepAliveHttp:
    """Keep-alive HTTP/1.1 connections per service, with the `post()` that pywebpush (and the Twilio
    transport) call: each POST goes on an idle kept connection if there is one, else on a new one."""

    def __init__(self, pool_size: int, tls: ssl.SSLContext | None = None, clock=time.monotonic):
        self.pool_size, self.clock = pool_size, clock
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._tls = tls or ssl.create_default_context()

    def post(self, url: str, *, data: bytes | None = None, headers: dict | None = None,
             timeout: float | None = None) -> HttpAnswer:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise Unreachable(f"not an http(s) URL: {url[:80]!r}")
        default_port = 443 if parts.scheme == "https" else 80
        service = (parts.scheme, parts.hostname, parts.port or default_port)
        request = _request(parts.netloc if parts.port not in (None, default_port) else parts.hostname,
                           (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), data or b"", headers or {})
        reused = self._take(service)
        for connection in ([reused] if reused else []) + [None]:
            fresh = connection is None
            try:
                if fresh:
                    connection = _Connection.open(service, timeout, self._tls)
                connection.send(request, timeout)
                status, answer_headers, body, keep = connection.read_response()
            except _Dropped as exc:
                connection.close()
                if fresh:
                    raise Unreachable(str(exc)) from None
                # A connection that sat idle was closed by the service (its keep-alive timeout) just as
                # the request went: nothing of it was answered, so it goes again on a new connection.
                continue
            except (OSError, ValueError) as exc:
                if connection is not None:
                    connection.close()
                raise Unreachable(f"{type(exc).__name__}: {exc}"[:200],
                                  timed_out=isinstance(exc, TimeoutError)) from None
            if keep:
                self._give_back(service, connection)
            else:
                connection.close()
            return HttpAnswer(status, answer_headers, body)
        raise AssertionError("not reached: the last attempt is on a fresh connection")

    def _take(self, service: tuple[str, str, int]) -> _Connection | None:
        """An idle connection to the service that the service has not closed meanwhile, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(service)
                connection = idle.pop() if idle else None
            if connection is None or self.clock() - connection.idle_since < TRUSTED_IDLE_SECONDS \
                    or not connection.dropped():
                return connection
            connection.close()

    def _give_back(self, service: tuple[str, str, int], connection: _Connection) -> None:
        connection.idle_since = self.clock()
        with self._lock:
            idle = self._idle.setdefault(service, [])
            if len(idle) < self.pool_size:
                idle.append(connection)
                return
        connection.close()


def _request(host: str, path: str, body: bytes, headers: dict) -> bytes:
    """The bytes of one POST; a header that would split the request (CR, LF) is refused."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        value = str(value)
        if any(c in f"{name}{value}" for c in "\r\n\0") or ":" in name:
            raise ValueError(f"header {name!r} has a character HTTP does not allow")
        if name.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One socket to a service and what has been read from it but not used yet."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.answered = False  # some byte of the current answer arrived
        self.idle_since = 0.0  # when it was last given back to the pool

    @classmethod
    def open(cls, service: tuple[str, str, int], timeout: float | None, tls: ssl.SSLContext) -> _Connection:
        scheme, host, port = service
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def send(self, request: bytes, timeout: float | None) -> None:
        """Write the whole request; a connection the service has closed is `_Dropped` (nothing answered)."""
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(request)
        except OSError as exc:
            raise _Dropped(f"{type(exc).__name__}: {exc}") from None

    def dropped(self) -> bool:
        """Whether the idle socket was closed by the other side (it reads as ready, with EOF)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as exc:
            if not self.answered:
                raise _Dropped(type(exc).__name__) from None
            raise
        if not chunk:
            if not self.answered:
                raise _Dropped("RemoteDisconnected: closed without an answer")
            raise ConnectionError("the service closed the connection mid-answer")
        self.answered = True
        self.buffer += chunk

    def _until(self, marker: bytes, limit: int) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise ValueError("the answer's head is too long")
            self._fill()
        found, self.buffer = self.buffer[:end], self.buffer[end + len(marker):]
        return found

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def read_response(self) -> tuple[int, ResponseHeaders, bytes, bool]:
        """(status, headers, body, whether the connection can carry the next request)."""
        self.answered, self.buffer = False, b""
        while True:
            status_line, *lines = self._until(b"\r\n\r\n", MAX_HEAD).split(b"\r\n")
            version, _, rest = status_line.partition(b" ")
            if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
                raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
            status = int(rest[:3])
            headers = ResponseHeaders()
            for line in lines:
                name, colon, value = line.partition(b":")
                if not colon:
                    raise ValueError(f"not an HTTP header: {line[:60]!r}")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            if not 100 <= status < 200:  # an interim answer (100 Continue) is followed by the real one
                break
        keep = version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            size = int(headers["content-length"])
            if not 0 <= size <= MAX_BODY:
                raise ValueError(f"Content-Length {size} is more than a push service or Twilio sends")
            body = self._exactly(size)
        else:  # the body runs until the service closes the connection
            while len(self.buffer) <= MAX_BODY:
                try:
                    self._fill()
                except ConnectionError:
                    break
            body, keep = self.buffer, False
        return status, headers, body, keep

    def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self._until(b"\r\n", 1024).split(b";")[0].strip(), 16)
            if size == 0:
                while self._until(b"\r\n", MAX_HEAD):  # trailers, up to the empty line
                    pass
                return body
            if len(body) + size > MAX_BODY:
                raise ValueError("the answer's body is more than a push service or Twilio sends")
            body += self._exactly(size)
            if self._until(b"\r\n", 2):
                raise ValueError("a chunk longer than its size")
