"""How the process is served: gevent greenlets under gunicorn's gevent worker, OS threads otherwise.

The Procfile (and `emergency serve`) run gunicorn's `gevent` worker, which monkey-patches the
standard library before the app is imported: sockets, `threading`, `queue` and `time.sleep` then
switch greenlets instead of blocking, so one process holds thousands of idle live connections.
Tests and tools that import the app without gevent's patching get plain threads. Everything that
must follow the serving model asks this module rather than guessing.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from collections.abc import Callable
from typing import TypeVar

import gevent
import psycopg.errors
import psycopg.waiting
from gevent import Timeout, get_hub, monkey
from gevent.hub import Waiter

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_gevent() -> bool:
    """Whether gevent has patched this process (gunicorn's gevent worker does it before loading the app)."""
    return monkey.is_module_patched("socket")


def async_mode() -> str:
    """Socket.IO's async mode for how this process is served: it must match, or sockets block the loop."""
    return "gevent" if is_gevent() else "threading"


def run_blocking(function: Callable[..., T], *args) -> T:
    """Run CPU-bound work that releases the GIL (argon2) off the event loop when served by gevent.

    Under gevent every connection shares one OS thread: a 150 ms password hash would stall every
    socket and request for 150 ms. gevent's thread pool runs it on a real thread meanwhile.
    """
    if is_gevent():
        return get_hub().threadpool.apply(function, args)
    return function(*args)


def tune_for_connections() -> None:
    """Under gevent: spawn greenlets without recording who spawned them and from where, let psycopg
    wait for PostgreSQL on gevent's own loop (wait_for_postgres), and freeze what outlives a full
    garbage collection (FreezeSurvivors).

    Each live connection starts greenlets (its websocket reader, its ping timer); recording the
    spawning stack for each is a debugging aid that costs a stack walk per spawn.
    """
    if is_gevent():
        gevent.config.track_greenlet_tree = False
        psycopg.waiting.wait = wait_for_postgres
        gc.callbacks.append(FreezeSurvivors())


# How often the objects frozen by FreezeSurvivors are all examined again, so that reference cycles
# among them (a connection closed long ago) are freed after all.
GC_THAW_SECONDS = 120.0


class FreezeSurvivors:
    """A `gc.callbacks` hook: after each full collection, freeze what survived it (`gc.freeze`).

    Each live connection is about 130 objects the collector tracks, and they live for hours: with
    10,000 phones a full collection walked 1.4 million objects and took over a second, and one ran
    each time the heap grew by a quarter, so a connect storm paid for every earlier connection again
    and again (measured: 7.6 s of full collections for 16,000 connects). Frozen survivors are never
    walked again; the next full collection looks only at what was made since. Reference counting
    still frees frozen objects; only cycles among them wait, until a full collection after
    GC_THAW_SECONDS unfreezes everything so that the next one examines it all once.
    """

    def __init__(self, thaw_seconds: float = GC_THAW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.thaw_seconds, self.clock = thaw_seconds, clock
        self.thawed_at = clock()

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        if self.clock() - self.thawed_at >= self.thaw_seconds:
            gc.unfreeze()  # the next full collection walks everything once
            self.thawed_at = self.clock()
        else:
            gc.freeze()


def wait_for_postgres(gen, fileno: int, interval: float | None = 0.0, timeout: float | None = None):
    """psycopg's wait function (`psycopg.waiting.wait`) on gevent's loop: one io watcher per wait.

    Under gevent's patching psycopg falls back to `select.poll`, which gevent emulates by building
    and starting a watcher set for every call: a fifth of a socket connect's CPU went there. The
    protocol is psycopg's: the generator yields what it waits for (read 1, write 2, both 3, the same
    bits as the loop's io events) and is sent what is ready. `interval` (psycopg's periodic wake-up
    to notice Ctrl-C) is not needed: gevent delivers signals to the loop. `timeout` still raises
    psycopg's own wait timeout.
    """
    hub = get_hub()
    timer = Timeout(timeout)  # None: never expires
    timer.start()
    try:
        waiting = next(gen)
        while True:
            watcher = hub.loop.io(fileno, waiting)
            waiter = Waiter(hub)
            watcher.start(waiter.switch, pass_events=True)
            try:
                ready = waiter.get()
            finally:
                watcher.stop()
                watcher.close()
            # An error on the socket wakes the watcher with neither bit: say both, so psycopg reads or
            # writes and raises the real error instead of being asked to wait again for ever.
            waiting = gen.send(ready & 3 or 3)
    except StopIteration as done:
        return done.value
    except Timeout as expired:
        if expired is not timer:
            raise
        raise psycopg.errors._WaitTimeout("wait timeout expired") from None
    finally:
        timer.cancel()


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; returns the new soft limit.

    Each live connection is one file descriptor. A process may raise its own soft limit up to the
    hard one without privileges; the hard limit itself is the service manager's (systemd
    `LimitNOFILE=`, docker `--ulimit nofile=`).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # pragma: no cover - platform refusal
            log.warning("could not raise the open-file limit from %s to %s: %s", soft, hard, exc)
    return soft
