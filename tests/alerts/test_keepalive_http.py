"""The push transport: keep-alive connections reused, and a connection the service closed never loses a push."""

from __future__ import annotations

import select
import socket
import ssl
import threading

import pytest

from emergency.alerts.providers import keepalive
from emergency.alerts.providers.keepalive import TRUSTED_IDLE_SECONDS, KeepAliveHttp, Unreachable


class TinyServer:
    """An HTTP/1.1 server whose connections each answer `answers` requests, then behave as `then` says.

    then="drop": read the next request and close without answering (a keep-alive timeout racing a request);
    then="close": close the idle connection after the last answer (the service ending keep-alive).
    """

    def __init__(self, answers: int = 1_000, then: str = "drop", status: int = 201, extra: str = "",
                 reply: bytes | None = None):
        self.answers, self.then, self.status, self.extra, self.reply = answers, then, status, extra, reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/push/device-1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _read_request(self, connection: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = connection.recv(65536)
            if not chunk:
                return None, buffer
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            rest += connection.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        with connection:
            for _ in range(self.answers):
                request, buffer = self._read_request(connection, buffer)
                if request is None:
                    return
                self.requests.append(request)
                connection.sendall(self.reply or
                                   f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\n{self.extra}\r\nok".encode())
            if self.then == "drop":
                self._read_request(connection, buffer)  # taken, never answered

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve():
    servers: list[TinyServer] = []

    def start(**kwargs) -> TinyServer:
        servers.append(TinyServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_one_connection_carries_many_pushes(serve):
    server = serve()
    http = KeepAliveHttp(pool_size=4)
    answers = [http.post(server.url, data=b"x" * 10, headers={"TTL": "60"}, timeout=5) for _ in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    assert server.connections == 1
    assert len(server.requests) == 5 and server.requests[0].startswith(b"POST /push/device-1 HTTP/1.1")


def _count_sends(monkeypatch) -> list[bytes]:
    sent: list[bytes] = []
    real = keepalive._Connection.send

    def send(connection, request: bytes, timeout: float | None) -> None:
        sent.append(request)
        real(connection, request, timeout)

    monkeypatch.setattr(keepalive._Connection, "send", send)
    return sent


def test_a_connection_the_service_closed_while_idle_is_not_used(serve, monkeypatch):
    server = serve(answers=1, then="close")
    sent = _count_sends(monkeypatch)
    now = [0.0]
    http = KeepAliveHttp(pool_size=4, clock=lambda: now[0])
    for _ in range(3):
        assert http.post(server.url, data=b"x", timeout=5).status_code == 201
        [kept] = next(iter(http._idle.values()))
        select.select([kept.sock], [], [], 5)  # the service has closed it
        now[0] += TRUSTED_IDLE_SECONDS  # idle long enough to be checked before it is used again
    assert server.connections == 3 and len(server.requests) == 3
    assert len(sent) == 3  # each closed connection was seen closed and never written to


def test_a_connection_used_moments_ago_is_taken_unchecked_and_a_push_it_drops_goes_again(serve, monkeypatch):
    server = serve(answers=1, then="close")
    sent = _count_sends(monkeypatch)
    monkeypatch.setattr(keepalive._Connection, "dropped", lambda connection: pytest.fail("checked a fresh connection"))
    http = KeepAliveHttp(pool_size=4, clock=lambda: 0.0)
    for _ in range(3):
        assert http.post(server.url, data=b"x", timeout=5).status_code == 201
    assert server.connections == 3 and len(server.requests) == 3
    assert len(sent) == 5  # the 2nd and 3rd went on the closed connection first, then on a new one


def test_a_kept_connection_that_cannot_be_written_to_is_replaced(serve):
    server = serve()
    http = KeepAliveHttp(pool_size=4)
    assert http.post(server.url, data=b"x", timeout=5).status_code == 201
    [kept] = next(iter(http._idle.values()))
    kept.sock.close()  # writing to it now fails at once
    assert http.post(server.url, data=b"second", timeout=5).status_code == 201
    assert server.connections == 2 and server.requests[-1].endswith(b"second")


def test_a_request_the_service_dropped_on_a_kept_connection_goes_again_on_a_new_one(serve):
    server = serve(answers=1, then="drop")
    http = KeepAliveHttp(pool_size=4)
    assert http.post(server.url, data=b"first", timeout=5).status_code == 201
    assert http.post(server.url, data=b"second", timeout=5).status_code == 201
    assert server.connections == 2
    # The dropped request reached the first connection, was never answered, and was sent again.
    assert [r.endswith(b"second") for r in server.requests] == [False, True]


def test_a_fresh_connection_that_is_dropped_is_an_unreachable_service(serve):
    server = serve(answers=0, then="drop")
    with pytest.raises(Unreachable, match="RemoteDisconnected"):
        KeepAliveHttp(pool_size=4).post(server.url, data=b"x", timeout=5)
    assert server.connections == 1


def test_connection_close_from_the_service_is_honoured(serve):
    server = serve(extra="Connection: close\r\n")
    http = KeepAliveHttp(pool_size=4)
    assert http.post(server.url, data=b"x", timeout=5).status_code == 201
    assert http.post(server.url, data=b"x", timeout=5).status_code == 201
    assert server.connections == 2


def test_headers_and_status_reach_the_caller(serve):
    server = serve(status=429, extra="Retry-After: 7\r\n")
    answer = KeepAliveHttp(pool_size=4).post(server.url, data=b"x", timeout=5)
    assert answer.status_code == 429 and answer.headers.get("retry-after") == "7" and answer.text == "ok"


def test_no_more_idle_connections_than_the_pool_holds(serve):
    server = serve()
    http = KeepAliveHttp(pool_size=2)
    barrier = threading.Barrier(4)

    def post() -> None:
        barrier.wait()
        http.post(server.url, data=b"x", timeout=5)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(idle) for idle in http._idle.values()) <= 2


def test_a_service_that_does_not_answer_in_time_is_unreachable():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    try:
        with pytest.raises(Unreachable, match="timeout|TimeoutError"):
            KeepAliveHttp(pool_size=1).post(f"http://127.0.0.1:{listener.getsockname()[1]}/p", data=b"x", timeout=0.3)
    finally:
        listener.close()


@pytest.mark.parametrize(("reply", "text", "reused"), [
    (b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
     "hello world", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", "", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", "", True),
    (b"HTTP/1.0 201 Created\r\nContent-Length: 2\r\n\r\nok", "ok", False),
])
def test_answers_are_read_to_their_end_and_the_connection_kept_when_it_can_be(serve, reply, text, reused):
    server = serve(reply=reply, then="close" if not reused else "drop")
    http = KeepAliveHttp(pool_size=4)
    first = http.post(server.url, data=b"x", timeout=5)
    second = http.post(server.url, data=b"x", timeout=5)
    assert (first.text, second.text) == (text, text)
    assert server.connections == (1 if reused else 2)


def test_a_body_that_runs_to_the_close_is_read_whole(serve):
    server = serve(answers=1, then="close", reply=b"HTTP/1.1 413 Too Large\r\n\r\npayload too large")
    answer = KeepAliveHttp(pool_size=4).post(server.url, data=b"x", timeout=5)
    assert (answer.status_code, answer.text) == (413, "payload too large")


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 201 Created\r\nno colon\r\n\r\n",
                                   b"HTTP/1.1 201 Created\r\nContent-Length: 99999999999\r\n\r\n"])
def test_an_answer_that_is_not_http_is_an_unreachable_service(serve, reply):
    server = serve(reply=reply)
    with pytest.raises(Unreachable, match="ValueError"):
        KeepAliveHttp(pool_size=4).post(server.url, data=b"x", timeout=5)


def test_a_header_that_would_split_the_request_is_refused_before_anything_is_sent(serve):
    server = serve()
    with pytest.raises(ValueError, match="Urgency"):
        KeepAliveHttp(pool_size=4).post(server.url, data=b"x", headers={"Urgency": "high\r\nX-Evil: 1"}, timeout=5)
    assert server.requests == []


def test_the_request_carries_the_host_the_headers_and_the_body(serve):
    server = serve()
    KeepAliveHttp(pool_size=4).post(server.url + "?q=1", data=b"\x00body", headers={"TTL": 60, "Urgency": "high"},
                               timeout=5)
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /push/device-1?q=1 HTTP/1.1"
    port = server.url.split(":")[2].split("/")[0]
    assert {b"Host: 127.0.0.1:" + port.encode(), b"TTL: 60", b"Urgency: high", b"Content-Length: 5"} <= set(lines)
    assert body == b"\x00body"


def _certificate(tmp_path, host: str):
    """A self-signed certificate for `host` (key and cert PEM files), as a push service's would be signed."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    """TinyServer behind TLS with a certificate for `localhost`; yields (server, a client context trusting it)."""
    cert_path, key_path = _certificate(tmp_path, "localhost")
    server = TinyServer()
    inner = server.sock
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    server.sock = context.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)
    inner.close()  # the plain listener's accept thread ends with it
    threading.Thread(target=server._accept, daemon=True).start()
    server.url = f"https://localhost:{server.sock.getsockname()[1]}/push/device-1"
    trusting = ssl.create_default_context(cafile=str(cert_path))
    yield server, trusting
    server.close()


def test_pushes_go_over_tls_on_a_kept_connection(tls_server):
    server, trusting = tls_server
    http = KeepAliveHttp(pool_size=4, tls=trusting)
    assert [http.post(server.url, data=b"x", timeout=5).status_code for _ in range(3)] == [201] * 3
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /push/device-1 HTTP/1.1\r\nHost: localhost:")


def test_a_push_service_whose_certificate_is_not_trusted_is_unreachable(tls_server):
    server, _ = tls_server
    with pytest.raises(Unreachable, match="SSLCertVerificationError"):
        KeepAliveHttp(pool_size=4).post(server.url, data=b"x", timeout=5)  # the system's CAs only


def test_a_certificate_for_another_host_is_refused(tls_server):
    server, trusting = tls_server
    other_name = server.url.replace("https://localhost:", "https://127.0.0.1:")
    with pytest.raises(Unreachable, match="SSLCertVerificationError"):
        KeepAliveHttp(pool_size=4, tls=trusting).post(other_name, data=b"x", timeout=5)
    assert server.requests == []
