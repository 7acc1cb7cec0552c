"""The Socket.IO server: who may connect, which rooms they join, how events go out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room

from emergency.accounts.service import PrincipalCache, authenticate, token_hash
from emergency.db import db, reading_only
from emergency.errors import Unauthorized
from emergency.metrics import instruments as metrics
from emergency.realtime.push import ADMINS, Push
from emergency.realtime.sessions import LiveSessions
from emergency.serving import async_mode

log = logging.getLogger(__name__)


def school_room(school_id: int) -> str:
    return f"school:{school_id}"


def admin_room(school_id: int) -> str:
    return f"admins:{school_id}"


def partner_room(school_id: int) -> str:
    return f"partners:{school_id}"


def person_room(person_id: int) -> str:
    return f"person:{person_id}"


DISTRICT_ROOM = "district"


class SocketPublisher:
    """Emits pushes through a Flask-SocketIO server or a write-only message-queue emitter.

    One emit per audience, addressed to all its rooms at once: python-socketio encodes the packet
    once per emit and hands the same bytes to every socket of the rooms (each socket once, even
    when it is in several of them). Partners get their own, stripped copy.
    """

    def __init__(self, socketio: SocketIO):
        self.socketio = socketio

    def publish(self, push: Push) -> None:
        metrics.event_pushed(push.name)
        audience = admin_room(push.school_id) if push.audience == ADMINS else school_room(push.school_id)
        staff = [audience, DISTRICT_ROOM, *(person_room(p) for p in push.person_ids)]
        self.socketio.emit(push.name, push.data, to=staff, namespace="/")
        if push.partner_data is not None:
            self.socketio.emit(push.name, push.partner_data, to=partner_room(push.school_id), namespace="/")


def origin_of(url: str) -> str:
    """`https://host[:port]` of a URL: what a browser sends as its Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def origin_check(public_base_url: str):
    """Which browser origins may connect: the service's public one, or the very host the page connected to.

    Only browsers send an Origin, and they cannot forge it: a page of another site is refused even
    with a stolen token in hand. Clients that send none (native apps, scripts) are not subject to it.
    """
    public = origin_of(public_base_url)

    def allowed(origin: str, environ: dict) -> bool:
        same_host = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin in (public, same_host)

    return allowed


def init_socketio(app: Flask) -> SocketIO:
    """Create the app's Socket.IO server; with REDIS_URL it joins the other instances."""
    socketio = SocketIO(
        app,
        # Follows how the process is served (emergency.serving): gevent under gunicorn's gevent
        # worker, threads under werkzeug and the tests. A mismatch blocks every socket on one.
        async_mode=async_mode(),
        message_queue=app.config.get("REDIS_URL") or None,
        # Browsers only from the service's own origin; no cookies are involved, so no credentials.
        cors_allowed_origins=origin_check(app.config["PUBLIC_BASE_URL"]),
        cors_credentials=False,
        manage_session=False,  # no Flask session (cookie) in socket handlers: auth is the token
        logger=False,
        engineio_logger=False,
    )
    live = LiveSessions()
    principals: PrincipalCache = app.extensions["principal_cache"]

    def _authenticate(token: str):
        # A school's phones connect (and reconnect) at once: their principals are cached briefly, and a
        # lookup is one statement outside any transaction (PostgreSQL: no BEGIN and ROLLBACK round trips).
        # Its own short session: the handler may share an app context (and its session) with other code.
        if (cached := principals.get(token_hash(token))) is not None:
            return cached
        with db.new_session(app) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return authenticate(session, token, cache=principals)

    @socketio.on("connect")
    def connect(auth=None):
        # Only from the auth payload: a token in the query string would end up in access logs.
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectionRefusedError("Send the token in the Socket.IO auth payload: {\"token\": \"...\"}.")
        reading = reading_only.set(True)  # on SQLite: a read transaction, not a queued writer's
        try:
            principal = _authenticate(token)
        except Unauthorized as exc:
            log.info("socket connect refused: %s", exc.message)
            raise ConnectionRefusedError(exc.message) from None
        finally:
            reading_only.reset(reading)
        if principal.is_partner:
            rooms = [partner_room(school_id) for school_id in principal.school_ids or ()]
        elif principal.school_ids is None:
            rooms = [DISTRICT_ROOM, person_room(principal.id)]
        else:
            rooms = [*(school_room(school_id) for school_id in principal.school_ids), person_room(principal.id),
                     *(admin_room(school_id) for school_id in principal.school_ids if principal.is_admin_of(school_id))]
        for room in rooms:
            join_room(room)
        live.add(request.sid, token_hash(token))
        metrics.socket_connected()
        return True

    @socketio.on("disconnect")
    def disconnect(*_reason):
        live.discard(request.sid)
        metrics.socket_disconnected()

    app.extensions["socketio"] = socketio
    app.extensions["live_sessions"] = live
    return socketio


def sweep_live_sessions(app: Flask) -> int:
    """Cut off this instance's sockets whose token no longer authenticates; returns how many."""
    socketio: SocketIO = app.extensions["socketio"]
    live: LiveSessions = app.extensions["live_sessions"]
    return live.sweep(app.extensions["db"]["sessionmaker"],
                      lambda sid: socketio.server.disconnect(sid, namespace="/"),
                      forget=app.extensions["principal_cache"].forget)


def start_session_sweeper(app: Flask) -> None:
    """Sweep every LIVE_SESSION_CHECK_SECONDS in a background task (a greenlet under gevent)."""
    socketio: SocketIO = app.extensions["socketio"]
    interval = app.config["LIVE_SESSION_CHECK_SECONDS"]
    if not interval:
        return

    def loop():
        while True:
            socketio.sleep(interval)
            try:
                sweep_live_sessions(app)
            except Exception:
                log.exception("checking live sessions failed; retrying")

    socketio.start_background_task(loop)
