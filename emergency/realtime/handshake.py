"""The websocket handshake, answered from the request gunicorn has already parsed, without compression.

Engine.IO hands a websocket upgrade to simple-websocket, which rebuilds the HTTP request from the
WSGI environ and parses it again with wsproto's h11 handshake: a sixth of a connect's server CPU
went there. It also accepts permessage-deflate whenever the client offers it, and every browser
does: each connection then keeps its own zlib compressor and decompressor for as long as it lives
(measured: 173 KB of server memory per live phone instead of 67 KB), and every frame of a fan-out
is compressed once per phone. Our frames are small JSON; compression saves a few bytes each.

`PlainWebSocket` answers the upgrade itself (RFC 6455 section 4.2.2) and offers no extension, which
RFC 6455 lets a server do: the client then sends and expects plain frames. The websocket protocol
after the handshake is still wsproto's, driven by simple-websocket as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import simple_websocket
from wsproto.connection import Connection, ConnectionType

# RFC 6455 section 1.3: appended to the client's key before hashing.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WEBSOCKET_GUID).digest()).decode("ascii")


def handshake_problem(environ: dict) -> tuple[str, str] | None:
    """What is wrong with a websocket upgrade request (an HTTP status and a reason), or None."""
    if environ.get("REQUEST_METHOD") != "GET":
        return "405 Method Not Allowed", "a websocket upgrade is a GET"
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return "400 Bad Request", "the Upgrade header must be 'websocket'"
    if "upgrade" not in (part.strip().lower() for part in environ.get("HTTP_CONNECTION", "").split(",")):
        return "400 Bad Request", "the Connection header must include 'Upgrade'"
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        return "426 Upgrade Required", "Sec-WebSocket-Version must be 13"
    try:
        nonce = base64.b64decode(environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip(), validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


class PlainServer(simple_websocket.Server):
    """simple-websocket's server side, with the handshake answered directly and no extension."""

    def handshake(self) -> None:
        key = self.environ["HTTP_SEC_WEBSOCKET_KEY"].strip()
        # The connection starts open: wsproto's own handshake state machine is not needed.
        self.ws = Connection(ConnectionType.SERVER)
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: " + accept_key(key).encode("ascii") + b"\r\n\r\n")
        self.connected = True


def plain_websocket(base: type) -> type:
    """Engine.IO's websocket class for its async mode (`base`), answering upgrades with PlainServer.

    `__call__` is simple-websocket's own (`engineio.async_drivers._websocket_wsgi`), with the server
    class swapped and a malformed upgrade refused with a reason instead of an exception.
    """

    class PlainWebSocket(base):
        def __call__(self, environ, start_response):
            if problem := handshake_problem(environ):
                status, reason = problem
                headers = [("Content-Type", "text/plain; charset=utf-8")]
                if status.startswith("426"):
                    headers.append(("Sec-WebSocket-Version", "13"))
                start_response(status, headers)
                return [reason.encode()]
            self.ws = PlainServer(environ, **self.server_args)
            answer = self.app(self)
            if self.ws.mode == "gunicorn":
                raise StopIteration()  # gunicorn: the response was written on the socket
            if self.ws.mode == "werkzeug":
                raise ConnectionError()  # werkzeug: likewise
            return answer

    PlainWebSocket.__name__ = PlainWebSocket.__qualname__ = f"Plain{base.__name__}"
    return PlainWebSocket


def answer_upgrades_plainly(engineio_server) -> None:
    """Have an Engine.IO server answer websocket upgrades with `plain_websocket`."""
    drivers = engineio_server._async  # the async mode's driver table, one per server
    engineio_server._async = {**drivers, "websocket": plain_websocket(drivers["websocket"])}
