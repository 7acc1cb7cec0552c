"""The Socket.IO server: who may connect, which rooms they join, how events go out."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_socketio import SocketIO, join_room

from emergency.accounts.service import authenticate
from emergency.db import db
from emergency.errors import Unauthorized
from emergency.realtime.push import ADMINS, Push

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
    """Emits pushes through a Flask-SocketIO server or a write-only message-queue emitter."""

    def __init__(self, socketio: SocketIO):
        self.socketio = socketio

    def publish(self, push: Push) -> None:
        staff = admin_room(push.school_id) if push.audience == ADMINS else school_room(push.school_id)
        self.socketio.emit(push.name, push.data, to=staff, namespace="/")
        self.socketio.emit(push.name, push.data, to=DISTRICT_ROOM, namespace="/")
        if push.partner_data is not None:
            self.socketio.emit(push.name, push.partner_data, to=partner_room(push.school_id), namespace="/")
        for person_id in push.person_ids:
            self.socketio.emit(push.name, push.data, to=person_room(person_id), namespace="/")


def init_socketio(app: Flask) -> SocketIO:
    """Create the app's Socket.IO server; with REDIS_URL it joins the other instances."""
    socketio = SocketIO(
        app,
        # Explicit: with gevent or eventlet installed, auto-detection picks them and breaks gthread.
        async_mode="threading",
        message_queue=app.config.get("REDIS_URL") or None,
        # Clients authenticate with a bearer token, never a cookie, so another origin gains nothing
        # it could not do with the token itself; native apps and other hosts may connect.
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )

    @socketio.on("connect")
    def connect(auth=None):
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        token = token or request.args.get("token") or ""
        try:
            principal = authenticate(db.session, token)
        except Unauthorized as exc:
            log.info("socket connect refused: %s", exc.message)
            # Returning False makes Socket.IO refuse the connection with a connect_error.
            raise ConnectionRefusedError(exc.message) from None
        if principal.is_partner:
            for school_id in principal.school_ids or ():
                join_room(partner_room(school_id))
        elif principal.school_ids is None:
            join_room(DISTRICT_ROOM)
        else:
            for school_id in principal.school_ids:
                join_room(school_room(school_id))
                if principal.is_admin_of(school_id):
                    join_room(admin_room(school_id))
        if not principal.is_partner:
            join_room(person_room(principal.id))
        return True

    app.extensions["socketio"] = socketio
    return socketio
