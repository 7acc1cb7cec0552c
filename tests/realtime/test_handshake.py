"""The websocket handshake answered from the parsed request, with no compression offered back."""

from __future__ import annotations

import base64
import json
import socket

import pytest
import requests
import websocket

from emergency.realtime.handshake import accept_key, handshake_problem
from tests.served import ServedProcess, ServedThread

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example
UPGRADE = {"REQUEST_METHOD": "GET", "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "keep-alive, Upgrade",
           "HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_SEC_WEBSOCKET_KEY": KEY}
# What Chrome and Firefox send with every websocket: an offer of permessage-deflate.
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


def test_the_accept_key_is_rfc_6455s():
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_well_formed_upgrade_has_no_problem():
    assert handshake_problem(UPGRADE) is None


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"REQUEST_METHOD": "POST"}, "405", "GET"),
    ({"HTTP_UPGRADE": "h2c"}, "400", "Upgrade header"),
    ({"HTTP_CONNECTION": "keep-alive"}, "400", "Connection header"),
    ({"HTTP_SEC_WEBSOCKET_VERSION": "8"}, "426", "Version must be 13"),
    ({"HTTP_SEC_WEBSOCKET_KEY": "not base64!"}, "400", "Sec-WebSocket-Key"),
    ({"HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"short").decode()}, "400", "16 bytes"),
    ({"HTTP_SEC_WEBSOCKET_KEY": ""}, "400", "Sec-WebSocket-Key"),
])
def test_a_malformed_upgrade_says_what_is_wrong(change, status, words):
    problem = handshake_problem({**UPGRADE, **change})
    assert problem is not None
    assert problem[0].startswith(status) and words in problem[1]


def _connects_without_compression(url: str, token: str) -> None:
    """A browser-like client offering permessage-deflate gets plain frames, and Socket.IO works over them."""
    ws = websocket.create_connection(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=20, suppress_origin=True, header=[DEFLATE_OFFER])
    try:
        # websocket-client has checked Sec-WebSocket-Accept; it cannot inflate, so a compressed frame would fail.
        headers = ws.getheaders()
        assert "sec-websocket-extensions" not in headers, headers
        assert ws.recv().startswith("0")
        ws.send("40" + json.dumps({"token": token}))
        assert ws.recv().startswith("40{")
    finally:
        ws.close()


def _refuses_a_bad_key(url: str) -> None:
    answer = requests.get(url + "/socket.io/?EIO=4&transport=websocket", timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "c2hvcnQ="})
    assert answer.status_code == 400
    assert "Sec-WebSocket-Key must be 16 bytes" in answer.text


def _raw_handshake_status(port: int) -> bytes:
    """The status line and headers a server sends to a hand-written upgrade offering compression."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     f"Sec-WebSocket-Key: {KEY}\r\n{DEFLATE_OFFER}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += raw.recv(4096)
        return head


def test_gunicorn_gevent_answers_the_upgrade_plainly(app, session, database_url, make_school, make_person, login):
    school = make_school()
    token = login(make_person("teacher", [school]))["Authorization"][7:]
    session.commit()
    env = {"DATABASE_URL": database_url, "ENV": "test", "SECRET_KEY": "test-secret-key-0123456789",
           "LOG_LEVEL": "WARNING", "DISPATCHER": "off", "REDIS_URL": ""}
    with ServedProcess(env) as served:
        head = _raw_handshake_status(served.port)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        assert b"extensions" not in head.lower()
        _connects_without_compression(served.url, token)
        _refuses_a_bad_key(served.url)


def test_the_threaded_server_answers_the_upgrade_plainly(app, session, make_school, make_person, login):
    school = make_school()
    token = login(make_person("teacher", [school]))["Authorization"][7:]
    session.commit()
    with ServedThread(app) as served:
        _connects_without_compression(served.url, token)
        _refuses_a_bad_key(served.url)
