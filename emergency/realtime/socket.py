"""The Socket.IO server: who may connect, which rooms they join, how events go out."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from urllib.parse import urlsplit

import socketio as python_socketio
from flask import Flask, g, has_request_context
from flask_socketio import ConnectionRefusedError, SocketIO

from emergency.accounts.service import PrincipalCache, authenticate_hashes, token_hash
from emergency.db import db, outside_transaction, reading_only
from emergency.errors import Unauthorized
from emergency.metrics import instruments as metrics
from emergency.realtime.grouped import GroupedLookup
from emergency.realtime.handshake import answer_upgrades_plainly
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
# A fan-out lets the other greenlets (requests, sockets) run after every this many phones.
YIELD_EVERY = 200


class _YieldingFanOut:
    """Hands the loop back every YIELD_EVERY recipients of an emit.

    Under gevent one emit to 10,000 phones is 10,000 queue puts with no I/O in between, about half
    a second in which no request and no other socket would be served. python-socketio walks
    `get_participants` (a copy of the rooms) for every emit, local or received from Redis.
    """

    def get_participants(self, namespace, room):
        for n, participant in enumerate(super().get_participants(namespace, room), 1):
            yield participant
            if n % YIELD_EVERY == 0:
                self.server.sleep(0)


class _RoomsOfEachSocket:
    """Knows each socket's rooms, so a socket leaves its own rooms without a walk over all of them.

    python-socketio finds a disconnecting socket's rooms by copying and walking every room of the
    namespace, and every socket has a room of its own: with 10,000 phones connected each disconnect
    costs 10,000 steps, and a school's Wi-Fi dropping 1,000 of them costs ten million.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set] = {}

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid, namespace):
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid, namespace, **kwargs):
        """python-socketio's own, but for the rooms it looks up."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


class YieldingManager(_RoomsOfEachSocket, _YieldingFanOut, python_socketio.Manager):
    """One instance: rooms in memory."""


class YieldingRedisManager(_RoomsOfEachSocket, _YieldingFanOut, python_socketio.RedisManager):
    """Several instances: every emit goes through Redis, and each instance fans out to its own phones."""


class SocketPublisher:
    """Emits pushes through the Flask-SocketIO server, from a background task of its own.

    A committed change must not wait for its fan-out: `publish` only queues the push, and one
    background task (a greenlet under gevent, a thread otherwise) emits the pushes in order. Pushes
    of an HTTP request are queued once its response has been sent (`send_after_response`): under
    gevent the fan-out's thousands of socket writes would otherwise run between the request's own
    database round trips. So `POST /runs` answers in the same time with 10,000 phones connected as
    with none, and the phones hear right after it.

    One emit per audience, addressed to all its rooms at once: python-socketio encodes the packet
    once per emit and hands the same bytes to every socket of the rooms (each socket once, even
    when it is in several of them). Partners get their own, stripped copy.
    """

    def __init__(self, socketio: SocketIO):
        self.socketio = socketio
        self._queue = None
        self._starting = threading.Lock()

    def publish(self, push: Push) -> None:
        metrics.event_pushed(push.name)
        if has_request_context() and g.get("live_pushes") is not None:
            g.live_pushes.append(push)
            return
        self._enqueue(push)

    def _enqueue(self, push: Push) -> None:
        if self._queue is None:
            self._start()
        self._queue.put(push)

    def send_after_response(self, app: Flask) -> None:
        """Hold an HTTP request's pushes until its response has gone out (not Socket.IO events')."""

        @app.before_request
        def hold():
            g.live_pushes = []

        @app.after_request
        def release(response):
            pushes, g.live_pushes = g.get("live_pushes"), None
            if pushes:
                # The WSGI server closes the response once it has written it (an error too).
                response.call_on_close(lambda: [self._enqueue(push) for push in pushes])
            return response

    def _start(self) -> None:
        """The emitting task starts with the first push (most processes and tests never publish)."""
        with self._starting:
            if self._queue is None:
                queue = self.socketio.server.eio.create_queue()
                self.socketio.start_background_task(self._emit_forever, queue)
                atexit.register(self.wait_until_sent)  # a CLI command's last events still go out
                self._queue = queue

    def wait_until_sent(self, timeout: float = 5.0) -> bool:
        """Wait until every queued push was emitted (tests; a process before it exits)."""
        deadline = time.monotonic() + timeout
        while self._queue is not None and self._queue.unfinished_tasks and time.monotonic() < deadline:
            self.socketio.sleep(0.005)
        return self._queue is None or not self._queue.unfinished_tasks

    def close(self) -> None:
        """Emit what is queued, then end the background task."""
        if self._queue is not None:
            self._queue.put(None)
            self.wait_until_sent()
            atexit.unregister(self.wait_until_sent)  # nothing left to wait for, and the app may go

    def _emit_forever(self, queue) -> None:
        while (push := queue.get()) is not None:
            try:
                self._emit(push)
            except Exception:  # a dead message queue must not stop the live channel for good
                log.exception("live push of %s failed", push.name)
            finally:
                queue.task_done()
        queue.task_done()

    def _emit(self, push: Push) -> None:
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
        client_manager=(YieldingRedisManager(app.config["REDIS_URL"], channel="flask-socketio")
                        if app.config.get("REDIS_URL") else YieldingManager()),
        # Browsers only from the service's own origin; no cookies are involved, so no credentials.
        cors_allowed_origins=origin_check(app.config["PUBLIC_BASE_URL"]),
        cors_credentials=False,
        manage_session=False,  # no Flask session (cookie) in socket handlers: auth is the token
        logger=False,
        engineio_logger=False,
    )
    answer_upgrades_plainly(socketio.server.eio)
    live = LiveSessions()
    principals: PrincipalCache = app.extensions["principal_cache"]

    def _lookup(hashes: list[str]) -> dict:
        # One statement outside any transaction (PostgreSQL: no BEGIN and ROLLBACK round trips), in a
        # short session of its own: the handler may share an app context (and its session) with other code.
        with db.new_session(app) as session:
            outside_transaction(session)
            return authenticate_hashes(session.connection(), hashes, cache=principals)

    lookups = GroupedLookup(_lookup)

    def _authenticate(token: str):
        # A school's phones connect (and reconnect) at once: their principals are cached briefly, and
        # the tokens of phones connecting together are looked up together.
        hashed = token_hash(token)
        if (cached := principals.get(hashed)) is not None:
            return cached
        answer = lookups.get(hashed)
        if isinstance(answer, Unauthorized):
            raise Unauthorized(answer.message)  # a fresh one: the same token may be refused to several phones
        return answer

    def connect(sid: str, _environ: dict, auth=None):
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
            socketio.server.enter_room(sid, room, namespace="/")
        live.add(sid, token_hash(token))
        metrics.socket_connected()
        return True

    def disconnect(sid: str, *_reason):
        live.discard(sid)
        metrics.socket_disconnected()

    # On python-socketio itself, not through Flask-SocketIO's decorator: that one builds a Flask
    # request context around every event (the request object, URL matching, teardown): 0.25-0.4 ms of
    # a connect's 1.5-1.9 ms of server CPU, and these handlers read nothing of Flask's (the token is in `auth`).
    socketio.server.on("connect", connect, namespace="/")
    socketio.server.on("disconnect", disconnect, namespace="/")

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
