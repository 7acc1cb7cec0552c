"""Live connections follow their token, tokens come only from the auth payload, browsers only from our origin."""

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
import socketio as socketio_client
import websocket

from emergency.accounts.models import AuthToken
from emergency.realtime.socket import sweep_live_sessions
from emergency.timeutil import utcnow
from tests.served import ServedThread


def _token(headers):
    return headers["Authorization"].split(" ", 1)[1]


def _client(app, headers):
    return app.extensions["socketio"].test_client(app, auth={"token": _token(headers)})


@pytest.fixture
def school(make_school):
    return make_school()


@pytest.fixture
def teacher(school, make_person, login):
    return login(make_person("teacher", [school]))


@pytest.fixture
def colleague(school, make_person, login):
    return login(make_person("teacher", [school]))


def test_a_token_in_the_query_string_is_refused(app, teacher):
    client = app.extensions["socketio"].test_client(app, query_string=f"token={_token(teacher)}")
    assert not client.is_connected()


def test_logout_disconnects_that_token_only(app, client, teacher, colleague):
    phone, tablet, other = _client(app, teacher), _client(app, teacher), _client(app, colleague)
    assert phone.is_connected() and tablet.is_connected() and other.is_connected()

    assert client.post("/api/v1/auth/logout", headers=teacher).status_code == 204
    assert sweep_live_sessions(app) == 2

    assert not phone.is_connected() and not tablet.is_connected()
    assert other.is_connected()
    assert sweep_live_sessions(app) == 0  # nothing left to cut off


def test_an_expired_token_is_disconnected(app, session, teacher, colleague):
    phone, other = _client(app, teacher), _client(app, colleague)
    row = session.query(AuthToken).filter_by(token_hash=_hash(teacher)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()

    assert sweep_live_sessions(app) == 1
    assert not phone.is_connected()
    assert other.is_connected()


def test_a_deactivated_person_is_disconnected(app, session, school, make_person, login, colleague):
    person = make_person("teacher", [school])
    headers = login(person)
    phone, other = _client(app, headers), _client(app, colleague)
    session.merge(person).active = False  # the login request closed the session `person` came from
    session.commit()

    assert sweep_live_sessions(app) == 1
    assert not phone.is_connected()
    assert other.is_connected()


def test_a_deactivated_partner_is_disconnected(app, session, school, make_partner, login):
    partner = make_partner([school])
    phone = _client(app, login(partner))
    assert phone.is_connected()
    session.merge(partner).active = False
    session.commit()

    assert sweep_live_sessions(app) == 1
    assert not phone.is_connected()


def test_a_disconnected_socket_is_forgotten(app, teacher):
    phone = _client(app, teacher)
    assert len(app.extensions["live_sessions"]) == 1
    phone.disconnect()
    assert len(app.extensions["live_sessions"]) == 0


def _hash(headers):
    from emergency.accounts.service import token_hash

    return token_hash(_token(headers))


@pytest.fixture
def app_overrides():
    return {"LIVE_SESSION_CHECK_SECONDS": 0.2}


def test_a_logged_out_phone_is_cut_off_within_seconds_by_the_sweeper(app, teacher):
    from emergency.realtime.socket import start_session_sweeper

    start_session_sweeper(app)
    with ServedThread(app) as served:
        gone = threading.Event()
        sio = socketio_client.Client(reconnection=False)
        sio.on("disconnect", lambda *reason: gone.set())
        sio.connect(served.url, auth={"token": _token(teacher)}, transports=["websocket"], wait_timeout=10)
        try:
            started = time.monotonic()
            assert requests.post(served.url + "/api/v1/auth/logout", headers=teacher, timeout=10).status_code == 204
            assert gone.wait(10), "the logged-out phone stayed connected"
            print(f"cut off {time.monotonic() - started:.2f} s after logout")
        finally:
            sio.disconnect()


def _raw_connect(url, token, origin):
    """A bare websocket client speaking Socket.IO (as a native app does); origin None sends no Origin."""
    options = {"suppress_origin": True} if origin is None else {"origin": origin}
    ws = websocket.create_connection(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=10, **options)
    assert ws.recv().startswith("0")  # Engine.IO open
    ws.send("40" + json.dumps({"token": token}))
    return ws, ws.recv()


@pytest.mark.parametrize("origin", ["http://testserver", None], ids=["own origin", "no origin"])
def test_our_origin_and_clients_without_an_origin_connect(app, teacher, origin):
    with ServedThread(app) as served:
        ws, answer = _raw_connect(served.url, _token(teacher), origin)
        ws.close()
    assert answer.startswith("40{") and '"sid"' in answer


def test_a_browser_from_another_origin_is_refused(app, teacher):
    with ServedThread(app) as served, pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _raw_connect(served.url, _token(teacher), "https://evil.example.org")
    assert refused.value.status_code == 400


def test_a_native_client_without_the_token_in_auth_is_refused(app, teacher):
    with ServedThread(app) as served:
        ws = websocket.create_connection(served.url.replace("http://", "ws://")
                                         + f"/socket.io/?EIO=4&transport=websocket&token={_token(teacher)}",
                                         timeout=10, suppress_origin=True)
        ws.recv()
        ws.send("40")
        answer = ws.recv()
        ws.close()
    assert answer.startswith("44")  # CONNECT_ERROR
    assert "auth payload" in answer


def test_cross_origin_polling_gets_no_cors_grant(app):
    with ServedThread(app) as served:
        response = requests.get(served.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                                headers={"Origin": "https://evil.example.org"}, timeout=10)
    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers


# -- the connect path's principal cache -----------------------------------------------------------------
def _token_lookups(app):
    """Counts statements reading auth_tokens by hash (the connect path's token lookup)."""
    from sqlalchemy import event

    seen = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM auth_tokens" in statement and ("token_hash =" in statement or "token_hash IN" in statement):
            seen.append(statement)

    event.listen(app.extensions["db"]["engine"], "before_cursor_execute", count)
    return seen


def test_a_school_reconnecting_looks_each_token_up_once(app, teacher):
    lookups = _token_lookups(app)
    phones = [_client(app, teacher) for _ in range(5)]

    assert all(phone.is_connected() for phone in phones)
    assert len(lookups) == 1


def test_a_logged_out_token_cannot_connect_again_though_it_was_cached(app, client, teacher):
    assert _client(app, teacher).is_connected()  # now cached

    assert client.post("/api/v1/auth/logout", headers=teacher).status_code == 204

    assert not _client(app, teacher).is_connected()


def test_a_deactivated_person_cannot_connect_again_though_cached(app, session, school, make_person, login):
    person = make_person("teacher", [school])
    headers = login(person)
    assert _client(app, headers).is_connected()
    session.merge(person).active = False
    session.commit()

    assert not _client(app, headers).is_connected()


def test_a_token_revoked_elsewhere_is_forgotten_by_the_sweeper(app, session, teacher):
    # Another instance's logout changes the row without this process seeing an ORM change.
    from sqlalchemy import update

    phone = _client(app, teacher)
    session.execute(update(AuthToken).where(AuthToken.token_hash == _hash(teacher)).values(revoked_at=utcnow()))
    session.commit()
    assert len(app.extensions["principal_cache"]) == 1

    assert sweep_live_sessions(app) == 1

    assert not phone.is_connected()
    assert len(app.extensions["principal_cache"]) == 0
    assert not _client(app, teacher).is_connected()
