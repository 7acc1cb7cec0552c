"""The PostgreSQL connection pool under gevent, and psycopg 3 cooperating with gevent's event loop."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from emergency.config import Config, ConfigError
from emergency.db import FairQueuePool, PoolSettings, make_engine

POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


def test_pool_settings_come_from_the_environment():
    config = Config.from_env({"DATABASE_POOL_SIZE": "40", "DATABASE_MAX_OVERFLOW": "0",
                              "DATABASE_POOL_TIMEOUT": "12.5"})

    assert (config.DATABASE_POOL_SIZE, config.DATABASE_MAX_OVERFLOW, config.DATABASE_POOL_TIMEOUT) == (40, 0, 12.5)


def test_an_empty_pool_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE must be at least 1"):
        Config(ENV="test", DATABASE_POOL_SIZE=0).resolved()


def test_a_postgresql_engine_keeps_the_configured_pool():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", PoolSettings(size=40, max_overflow=3,
                                                                                       timeout=7.5))

    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (40, 3, 7.5)


def test_a_postgresql_engine_serves_waiting_checkouts_in_turn():
    pool = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none").pool

    assert isinstance(pool, FairQueuePool)
    assert pool.logger.name.startswith("sqlalchemy.pool.")  # not among the app's loggers


class _Connection:
    """A DBAPI connection as far as the pool needs one."""

    def __init__(self) -> None:
        self.closed = False

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _fair_pool(size: int = 1, overflow: int = 0, timeout: float = 5.0) -> FairQueuePool:
    return FairQueuePool(_Connection, pool_size=size, max_overflow=overflow, timeout=timeout)


def _waiting(pool: FairQueuePool, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(pool._waiters) < count:
        assert time.monotonic() < deadline, "the checkouts never started waiting"
        time.sleep(0.005)


def _checkout_in_thread(pool, name: str, served: list[str], release: threading.Event) -> threading.Thread:
    def run() -> None:
        connection = pool.connect()
        served.append(name)
        release.wait(5)
        connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_connection_given_back_goes_to_the_checkout_that_waited_not_to_one_that_just_came():
    """SQLAlchemy's QueuePool fails this: the latecomer takes the connection before the waiter wakes."""
    pool = _fair_pool()
    held = pool.connect()
    served: list[str] = []
    gives_back_at_once = threading.Event()
    gives_back_at_once.set()
    waiting = _checkout_in_thread(pool, "waited", served, gives_back_at_once)
    time.sleep(0.1)  # the other checkout is waiting for the one connection

    held.close()
    latecomer = pool.connect()  # arrives as the connection comes back
    served.append("came later")
    latecomer.close()
    waiting.join(5)

    assert served == ["waited", "came later"]


def test_waiting_checkouts_are_served_in_the_order_they_came():
    pool = _fair_pool()
    held = pool.connect()
    served: list[str] = []
    releases = {name: threading.Event() for name in ("first", "second", "third")}
    threads = []
    for count, name in enumerate(releases, 1):
        threads.append(_checkout_in_thread(pool, name, served, releases[name]))
        _waiting(pool, count)

    held.close()
    for name in releases:
        releases[name].set()
    for thread in threads:
        thread.join(5)

    assert served == ["first", "second", "third"]
    assert pool.checkedin() == 1 and not pool._waiters


def test_a_checkout_that_waits_too_long_is_refused_and_leaves_the_queue():
    pool = _fair_pool(timeout=0.1)
    held = pool.connect()

    with pytest.raises(PoolTimeout, match="connection timed out, timeout 0.10"):
        pool.connect()

    assert not pool._waiters
    held.close()
    assert pool.checkedin() == 1  # back among the idle ones: nobody is waiting for it


def test_a_connection_handed_over_just_as_the_wait_runs_out_is_used_not_lost(monkeypatch):
    import emergency.db

    pool = _fair_pool(timeout=0.1)
    held = pool.connect()
    held_dbapi = held.dbapi_connection

    class LateHandoff(emergency.db._Handoff):
        """Its wait runs out at the moment the connection is given back to it."""

        def __init__(self) -> None:
            super().__init__()
            real = self.ready

            class Ready:
                set, is_set = real.set, real.is_set

                def wait(self, timeout):
                    held.close()
                    return False

            self.ready = Ready()

    monkeypatch.setattr(emergency.db, "_Handoff", LateHandoff)
    connection = pool.connect()

    assert connection.dbapi_connection is held_dbapi and not pool._waiters


def test_an_overflow_connection_goes_on_to_a_waiting_checkout_and_is_closed_once_nobody_needs_it():
    pool = _fair_pool(size=1, overflow=1)
    steady, extra = pool.connect(), pool.connect()
    steady_dbapi, extra_dbapi = steady.dbapi_connection, extra.dbapi_connection
    got: list[object] = []

    def wait_for_one() -> None:
        connection = pool.connect()
        got.append(connection.dbapi_connection)
        connection.close()

    waiting = threading.Thread(target=wait_for_one, daemon=True)
    waiting.start()
    _waiting(pool, 1)
    extra.close()  # someone waits: handed on as it is, still open
    waiting.join(5)

    assert got == [extra_dbapi] and not extra_dbapi.closed
    steady.close()  # the pool already keeps one idle: this one is closed
    assert steady_dbapi.closed and pool.overflow() == 0 and pool.checkedin() == 1


def test_the_default_pool_is_steady_rather_than_overflowing():
    # Overflow connections are closed when given back: a pool living on them forks a backend per request.
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")

    assert engine.pool.size() == 20 and engine.pool._max_overflow == 5


def test_the_app_engine_uses_the_pool_settings(make_config, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite keeps its own pool; PoolSettings apply to PostgreSQL")
    from emergency.app import create_app

    app = create_app(make_config(DATABASE_POOL_SIZE=33, DATABASE_MAX_OVERFLOW=2, DATABASE_POOL_TIMEOUT=9.0))
    engine = app.extensions["db"]["engine"]
    try:
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (33, 2, 9.0)
    finally:
        engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="set TEST_DATABASE_URL to a PostgreSQL database")
def test_psycopg_waits_for_the_database_without_blocking_gevent(database_url):
    """Served as the Procfile says (patched, then tune_for_connections), psycopg waits on gevent's loop
    through `emergency.serving.wait_for_postgres`; no psycogreen is needed.

    One connection holds an advisory lock; a greenlet asks for it on a second connection. If that
    wait blocked the process, the first greenlet could never release the lock and the second would
    fail at its statement timeout; cooperating, a ticker keeps running and the lock changes hands.
    """
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    script = textwrap.dedent(f"""
        from gevent import monkey; monkey.patch_all()
        import gevent, psycopg, psycopg.waiting
        from emergency.serving import tune_for_connections
        tune_for_connections()
        a = psycopg.connect({url!r}, autocommit=True)
        b = psycopg.connect({url!r}, autocommit=True)
        ticks = [0]
        def ticker():
            while True:
                ticks[0] += 1
                gevent.sleep(0.01)
        gevent.spawn(ticker)
        a.execute("SELECT pg_advisory_lock(424242)")
        def waiter():
            b.execute("SET statement_timeout = '20s'")
            b.execute("SELECT pg_advisory_lock(424242)")
            ticks_while_waiting = ticks[0]
            b.execute("SELECT pg_advisory_unlock(424242)")
            return ticks_while_waiting
        waiting = gevent.spawn(waiter)
        gevent.sleep(0.3)
        a.execute("SELECT pg_advisory_unlock(424242)")
        import gc
        from emergency.serving import FreezeSurvivors
        frozen = any(isinstance(hook, FreezeSurvivors) for hook in gc.callbacks)
        print(psycopg.waiting.wait.__name__, waiting.get(timeout=30), frozen)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    wait_function, ticks, frozen = done.stdout.split()
    assert wait_function == "wait_for_postgres"  # not psycopg's C wait, which blocks the whole process
    assert int(ticks) > 0
    assert frozen == "True", "tune_for_connections also freezes what outlives a full collection"


@pytest.mark.skipif(not POSTGRES, reason="set TEST_DATABASE_URL to a PostgreSQL database")
def test_a_connection_given_back_just_now_is_used_again_without_a_ping(database_url, monkeypatch):
    engine = make_engine(database_url)
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(1) or ping(connection))
    try:
        for _ in range(5):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT 1").scalar() == 1
        assert pings == []  # make_engine pings only a connection idle for a second or more
    finally:
        engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="set TEST_DATABASE_URL to a PostgreSQL database")
def test_a_connection_that_died_while_idle_in_the_pool_is_replaced_before_use(database_url):
    import time

    from sqlalchemy import create_engine

    from emergency.db import ping_when_idle

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0.05)
    try:
        with engine.connect() as connection:
            first = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        other = create_engine(database_url)
        with other.connect() as killer:  # what a database restart or a firewall does to an idle connection
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        other.dispose()
        time.sleep(0.1)

        with engine.connect() as connection:
            again = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert again != first
    finally:
        engine.dispose()


def test_a_postgresql_engine_lets_psycopg_cache_the_check_in_statement():
    """psycopg re-parses a statement past its cache limits on every execution (a third of a
    millisecond for a check-in). If psycopg renames those limits, this fails: look at db.py."""
    from psycopg import _queries
    from sqlalchemy.dialects.postgresql import psycopg as dialect

    from emergency.accountability.checkins import _checkin_statement

    make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none").dispose()  # connects to nothing
    compiled = _checkin_statement().compile(dialect=dialect.dialect())

    assert len(str(compiled)) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(compiled.params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
