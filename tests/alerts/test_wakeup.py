"""Dispatchers in other processes hear of new alerts from PostgreSQL (LISTEN/NOTIFY), not their next poll."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from emergency.alerts.models import Alert
from emergency.alerts.wakeup import listen_for_new_alerts
from emergency.db import db, is_postgres
from emergency.runs.service import StartRequest, start_run
from tests.alerts.helpers import as_principal, start


@pytest.fixture
def listener(app):
    engine = app.extensions["db"]["engine"]
    if not is_postgres(engine):
        pytest.skip("waking other processes is PostgreSQL's LISTEN/NOTIFY")
    woken, stop = threading.Event(), threading.Event()
    listening = listen_for_new_alerts(engine, woken.set, stop)
    assert listening.listening.wait(10), "the listener did not connect"
    yield woken
    stop.set()


def test_a_commit_that_queued_alerts_wakes_a_listening_dispatcher(app, listener, school, principal, teacher):
    assert not listener.is_set()
    start(app, principal, school)
    assert listener.wait(10)


def test_alerts_rolled_back_wake_nobody(app, session, listener, school, principal, teacher):
    request = StartRequest(school_id=school.id, playbook="lockdown", mode="drill", confirm=True)
    start_run(db.session, as_principal(principal), request, app.extensions["playbooks"])
    assert db.session.scalars(select(Alert.id)).first() is not None  # queued, in the open transaction
    db.session.rollback()
    assert not listener.wait(1.5)
    start(app, principal, school)  # the listener was listening all along
    assert listener.wait(10)


def test_sqlite_needs_no_listener(make_config, tmp_path):
    from emergency.app import create_app

    app = create_app(make_config(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    assert listen_for_new_alerts(app.extensions["db"]["engine"], lambda: None, threading.Event()) is None
