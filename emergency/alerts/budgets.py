"""Send budgets: one provider rate for the whole deployment, however many dispatchers share it.

`acquire(key, rate)` blocks until one more send under `key` (a sender number, or calls) keeps
every dispatcher together at or below `rate` per second:

- RedisBudget (REDIS_URL set): the `limits` package's moving window on Redis holds the cap: no
  one-second window ever has more than the rate. A window alone lets a whole second's sends go
  at once, which the provider sees as a burst; so each process also spaces its own sends at
  PACER_HEADROOM times the rate divided by the live dispatchers. The headroom matters: spaced at
  exactly its share, a process that falls behind (a slow pass, a busy core) loses that part of
  the rate for good, and the others may not make it up; the window still caps the total. If
  Redis cannot be reached it falls back to the budget below for a few seconds, then tries Redis
  again.
- DatabaseBudget (PostgreSQL without Redis): the next free slot per key in one row, moved on
  by a single UPDATE on the database's clock (a GCRA), so sends are evenly spaced.
- LocalBudget (SQLite, the documented one-process case, and the fallback): spaces sends within
  the process at the rate divided by the number of live dispatchers. Slower, never faster.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 5.0
# How much faster than its share of the rate a process may space its sends under the Redis window.
PACER_HEADROOM = 1.5
REDIS_TIMEOUT_SECONDS = 0.5


class Budget(Protocol):
    name: str

    def acquire(self, key: str, rate: float) -> None:
        """Block until one send under `key` fits `rate` per second (0 or less: no limit)."""
        ...


class RateLimiter:
    """Spaces calls to at most `rate` per second across threads (0 or less: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


class LocalBudget:
    """Paces this process alone, at `rate / share()` (share: how many dispatchers are alive).

    `headroom` above 1 lets this process go that much faster than its share, never faster than
    `rate` itself: only for spacing sends under a budget that caps the total (RedisBudget's pacer).
    """

    name = "local"

    def __init__(self, share: Callable[[], int] = lambda: 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, headroom: float = 1.0):
        self.share, self.clock, self.sleep, self.headroom = share, clock, sleep, headroom
        self._limiters: dict[tuple[str, float], RateLimiter] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return
        local_rate = min(rate, rate * self.headroom / max(self.share(), 1))
        with self._lock:
            limiter = self._limiters.get((key, local_rate))
            if limiter is None:
                limiter = self._limiters[(key, local_rate)] = RateLimiter(local_rate, self.clock, self.sleep)
        limiter.acquire()


# One statement: take the next slot (never before now, on the database's clock) and say how long to wait.
_TAKE_SLOT = text("""
    INSERT INTO send_budgets (key, next_at)
    VALUES (:key, extract(epoch from clock_timestamp()) + :interval)
    ON CONFLICT (key) DO UPDATE
    SET next_at = greatest(send_budgets.next_at, extract(epoch from clock_timestamp())) + :interval
    RETURNING next_at - :interval - extract(epoch from clock_timestamp())
""")


class DatabaseBudget:
    """The budget in PostgreSQL: evenly spaced slots per key, shared by every process on the database."""

    name = "database"

    def __init__(self, engine: Engine, sleep: Callable[[float], None] = time.sleep):
        self.engine, self.sleep = engine, sleep

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return
        with self.engine.begin() as connection:
            wait = connection.execute(_TAKE_SLOT, {"key": key[:64], "interval": 1.0 / rate}).scalar_one()
        if wait > 0:
            self.sleep(wait)


def window(rate: float) -> RateLimitItemPerSecond:
    """`rate` per second as a whole number of sends per whole seconds, rounded down (never faster)."""
    if rate >= 1:
        return RateLimitItemPerSecond(int(rate), 1)
    return RateLimitItemPerSecond(1, math.ceil(1 / rate))


class RedisBudget:
    """The `limits` moving window on Redis; `fallback` paces while Redis is unreachable."""

    name = "redis"

    def __init__(self, redis_url: str, fallback: Budget, *, pacer: Budget | None = None,
                 namespace: str = "emergency-send", storage: RedisStorage | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.storage = storage or RedisStorage(redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                               socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.fallback, self.namespace, self.clock, self.sleep = fallback, namespace, clock, sleep
        self.pacer = pacer
        self._down_until = 0.0
        # One thread per process and key asks Redis at a time; the others queue behind it in order.
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return
        if self.clock() < self._down_until:
            self.fallback.acquire(key, rate)
            return
        item = window(rate)
        if self.pacer is not None:
            self.pacer.acquire(key, rate)
        try:
            with self._lock(key):
                while not self.limiter.hit(item, self.namespace, key):
                    reset_at = self.limiter.get_window_stats(item, self.namespace, key).reset_time
                    self.sleep(min(max(reset_at - self.clock(), 0.001), item.get_expiry()))
        except Exception as exc:  # redis' ConnectionError, TimeoutError, ...: pace by the fallback
            log.warning("send budget: Redis unreachable (%s); pacing with the %s budget for %.0f s",
                        type(exc).__name__, self.fallback.name, REDIS_RETRY_SECONDS)
            self._down_until = self.clock() + REDIS_RETRY_SECONDS
            self.fallback.acquire(key, rate)
