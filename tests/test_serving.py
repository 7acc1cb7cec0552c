"""The Procfile's serving model: gunicorn's gevent worker, with the database, Redis, twilio and the dispatcher.

Served for real (`tests.served.ServedProcess` runs the Procfile's gunicorn command), on SQLite or,
with TEST_DATABASE_URL, PostgreSQL. More phones than the old threaded worker had threads stay
connected while the API answers, a start reaches them all, and the dispatcher (its thread pool
is greenlets under gevent) sends the SMS through the real twilio client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import requests
import websocket

from emergency.serving import async_mode, is_gevent
from tests.conftest import twilio_settings
from tests.served import REPO, ServedProcess

PHONES = 300  # three times the threads the Procfile's former gthread worker had


def _phone(url: str, token: str) -> websocket.WebSocket:
    """A bare Socket.IO websocket client, as a native app connects: token in the auth payload."""
    ws = websocket.create_connection(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=20, suppress_origin=True)
    assert ws.recv().startswith("0")
    ws.send("40" + json.dumps({"token": token}))
    answer = ws.recv()
    assert answer.startswith("40{"), answer
    return ws


def _next_event(ws: websocket.WebSocket) -> list:
    while True:
        message = ws.recv()
        if message == "2":  # Engine.IO ping
            ws.send("3")
        elif message.startswith("42"):
            return json.loads(message[2:])


def test_tests_and_tools_are_not_monkey_patched():
    assert not is_gevent()
    assert async_mode() == "threading"


def test_hundreds_of_phones_get_the_start_and_the_dispatcher_sends(app, session, database_url, make_school,
                                                                    make_person, login, fake_twilio):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    teacher = login(make_person("teacher", [school]))["Authorization"][7:]
    session.commit()
    env = {"DATABASE_URL": database_url, "ENV": "test", "SECRET_KEY": "test-secret-key-0123456789",
           "LOG_LEVEL": "WARNING", "DISPATCHER": "thread", "REDIS_URL": "", "LIVE_SESSION_CHECK_SECONDS": "1",
           **{k: str(v) for k, v in twilio_settings(fake_twilio).items()}}
    with ServedProcess(env) as served:
        phones = [_phone(served.url, teacher) for _ in range(PHONES)]
        try:
            assert requests.get(served.url + "/api/v1/me", headers=principal, timeout=10).ok  # not starved
            started = requests.post(served.url + "/api/v1/runs", headers=principal, timeout=10,
                                    json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
            assert started.status_code == 201, started.text
            for ws in phones:
                name, data = _next_event(ws)[:2]
                assert (name, data["run_id"]) == ("run.started", started.json()["id"])
            # The in-process dispatcher sent the drill's SMS with the real twilio client.
            assert fake_twilio.wait_for(lambda: len(fake_twilio.messages) >= 2, timeout=20)
        finally:
            for ws in phones:
                ws.close()


COOPERATION = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, gevent, psycopg, redis
    from emergency.serving import tune_for_connections
    tune_for_connections()  # as emergency/wsgi.py does: psycopg waits through wait_for_postgres

    ticks = []
    def ticker():
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    def during(work):
        del ticks[:]
        ticker_greenlet = gevent.spawn(ticker)
        gevent.sleep(0)
        gevent.spawn(work).join()
        ticker_greenlet.kill()
        return len(ticks)

    def postgres():
        with psycopg.connect(sys.argv[1]) as conn:
            conn.execute("SELECT pg_sleep(0.5)")

    def blocking_pop():
        redis.Redis.from_url(sys.argv[2]).blpop("emergency-test-nothing-here", timeout=1)

    print(during(postgres), during(blocking_pop))
""")


@pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                    reason="set TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL to check their drivers under gevent")
def test_psycopg_and_redis_wait_without_blocking_other_greenlets(database_url):
    """Under gevent's patching a 0.5 s query and a 1 s BLPOP let other greenlets run meanwhile."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run([sys.executable, "-c", COOPERATION, dsn, os.environ["TEST_REDIS_URL"]], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    during_query, during_pop = map(int, result.stdout.split())
    # A driver that blocked the loop would let the ticker run once at most; cooperating, it runs dozens of times.
    assert during_query > 5 and during_pop > 5, result.stdout


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
                    reason="set TEST_DATABASE_URL to a PostgreSQL database")
def test_wait_for_postgres_passes_on_psycopgs_errors_and_timeouts(database_url, monkeypatch):
    """The wait the Procfile's gevent worker gives psycopg (its cooperation with other greenlets is
    tested above and in test_db_pool.py): results and SQL errors arrive as psycopg's own wait gives
    them, a connection the server ends is an error rather than a wait for ever, and a wait timeout is
    psycopg's."""
    import gevent
    import psycopg
    import psycopg.errors
    from psycopg.generators import execute

    from emergency.serving import wait_for_postgres

    monkeypatch.setattr(psycopg.waiting, "wait", wait_for_postgres)
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        assert connection.execute("SELECT 41 + 1 FROM pg_sleep(0.1)").fetchone() == (42,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            connection.execute("SELECT 1 / 0")
        assert connection.execute("SELECT 'still usable'").fetchone() == ("still usable",)
    # The server ends the connection while a greenlet waits on it: psycopg's error, not a wait for ever.
    with psycopg.connect(url, autocommit=True) as victim, psycopg.connect(url, autocommit=True) as killer:
        waiting = gevent.spawn(victim.execute, "SELECT pg_sleep(30)")
        gevent.sleep(0.2)
        killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            waiting.get(timeout=20)
    stuck = psycopg.connect(url, autocommit=True)
    try:
        stuck.pgconn.send_query(b"SELECT pg_sleep(5)")
        with pytest.raises(psycopg.errors._WaitTimeout):
            wait_for_postgres(execute(stuck.pgconn), stuck.pgconn.socket, timeout=0.05)
    finally:
        stuck.pgconn.finish()


def test_survivors_of_a_full_collection_are_frozen_and_thawed_now_and_then():
    """Under gevent the web process freezes what outlives a full collection (its live connections),
    so the next full collection need not walk them again, and unfreezes it all every so often so
    that cycles among them are freed after all."""
    import gc

    from emergency.serving import FreezeSurvivors

    now = [100.0]
    hook = FreezeSurvivors(thaw_seconds=600, clock=lambda: now[0])
    gc.unfreeze()
    try:
        hook("start", {"generation": 2})
        hook("stop", {"generation": 1})
        assert gc.get_freeze_count() == 0, "only after a full collection"
        hook("stop", {"generation": 2})
        assert gc.get_freeze_count() > 0
        now[0] += 599
        hook("stop", {"generation": 2})
        assert gc.get_freeze_count() > 0
        now[0] += 1
        hook("stop", {"generation": 2})
        assert gc.get_freeze_count() == 0, "thawed: the next full collection walks everything"
        hook("stop", {"generation": 2})
        assert gc.get_freeze_count() > 0, "and what survives it is frozen again"
    finally:
        gc.unfreeze()
