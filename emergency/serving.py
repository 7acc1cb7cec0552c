"""How the process is served: gevent greenlets under gunicorn's gevent worker, OS threads otherwise.

The Procfile (and `emergency serve`) run gunicorn's `gevent` worker, which monkey-patches the
standard library before the app is imported: sockets, `threading`, `queue` and `time.sleep` then
switch greenlets instead of blocking, so one process holds thousands of idle live connections.
Tests and tools that import the app without gevent's patching get plain threads. Everything that
must follow the serving model asks this module rather than guessing.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from typing import TypeVar

import gevent
from gevent import get_hub, monkey

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
    """Under gevent: spawn greenlets without recording who spawned them and from where.

    Each live connection starts greenlets (its websocket reader, its ping timer); recording the
    spawning stack for each is a debugging aid that costs a stack walk per spawn.
    """
    if is_gevent():
        gevent.config.track_greenlet_tree = False


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
