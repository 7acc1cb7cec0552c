"""Waking dispatchers in other processes: PostgreSQL LISTEN on the channel the outbox NOTIFYs.

A web process's own dispatcher is woken by the commit itself (outbox.wake_on_commit). A dispatcher
in a worker process, or in another web instance, hears the commit through PostgreSQL and claims at
once, rather than after its idle sleep. Without PostgreSQL (SQLite is one process's database) or
when the listening connection is down, dispatchers still find new alerts on their next pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from emergency.alerts.outbox import DUE_CHANNEL
from emergency.db import is_postgres

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0


class WakeListener:
    """A daemon thread that calls `wake` whenever a transaction that queued alerts commits, anywhere."""

    def __init__(self, engine: Engine, wake: Callable[[], None], stop: threading.Event):
        url = engine.url.set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.wake, self.stop = wake, stop
        self.listening = threading.Event()  # set while the LISTEN is in place (tests, readiness)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="dispatcher-wakeup", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as connection:
                    connection.execute(f"LISTEN {DUE_CHANNEL}")
                    self.listening.set()
                    while not self.stop.is_set():
                        # Returns after a second without news, to look at `stop`.
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except psycopg.Error as exc:
                log.warning("cannot listen for new alerts (%s); polling until it works again",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            finally:
                self.listening.clear()
            self.stop.wait(RECONNECT_SECONDS)


def listen_for_new_alerts(engine: Engine, wake: Callable[[], None], stop: threading.Event) -> WakeListener | None:
    """Start listening on PostgreSQL (None on SQLite, where every writer is this process)."""
    if not is_postgres(engine):
        return None
    listener = WakeListener(engine, wake, stop)
    listener.start()
    return listener
