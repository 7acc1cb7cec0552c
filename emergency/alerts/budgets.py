"""Send budgets: one provider rate for the whole deployment, however many dispatchers share it.

`acquire(key, rate)` blocks until one more send under `key` (a sender number, or calls) keeps
every dispatcher together at or below `rate` per second. Every budget spaces sends evenly (a
GCRA: the next free slot per key, moved on by 1/rate per send), because a provider counts what
arrives in any second: a window that lets a second's sends go at once is a burst on its side.

- RedisBudget (REDIS_URL set): the next slot per key in Redis, taken by one server-side script
  on Redis's clock. If Redis cannot be reached it falls back to the budget below for a few
  seconds, then tries Redis again.
- DatabaseBudget (PostgreSQL without Redis): the same slot in one row, moved on by a single
  UPDATE on the database's clock.
- LocalBudget (SQLite, the documented one-process case, and the fallback): spaces sends within
  the process at the rate divided by the number of live dispatchers. Slower, never faster.

A slot is taken before the send, so a process that falls behind (a busy core) sends late rather
than losing its share, and no two processes ever take the same slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 5.0
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
    """Paces this process alone, at `rate / share()` (share: how many dispatchers are alive)."""

    name = "local"

    def __init__(self, share: Callable[[], int] = lambda: 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.share, self.clock, self.sleep = share, clock, sleep
        self._limiters: dict[tuple[str, float], RateLimiter] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return
        local_rate = rate / max(self.share(), 1)
        with self._lock:
            limiter = self._limiters.get((key, local_rate))
            if limiter is None:
                limiter = self._limiters[(key, local_rate)] = RateLimiter(local_rate, self.clock, self.sleep)
        limiter.acquire()


# A send that wakes more than one slot spacing (at most LATE_SECONDS) after its slot takes a new one
# rather than going now: a process that stalled (a garbage collection, a starved core) would
# otherwise send every slot it slept through at once, a burst at the provider. A send late by at most
# one spacing shares a one-second window with at most one more send than the rate. At most
# LATE_RETRIES new slots, then it goes.
LATE_SECONDS = 0.05
LATE_RETRIES = 3


def sleep_until_slot(asked: float, wait: float, sleep: Callable[[float], None]) -> float:
    """Sleep until `wait` seconds after the slot was asked for, not after the answer was read; returns
    how late it woke (seconds after the slot; 0 or less: on time).

    The answer can sit unread while the process serves others (a busy event loop); counting from
    then would send late by that much, and late sends bunch up with the next ones at the provider.
    """
    remaining = asked + wait - time.monotonic()
    if remaining > 0:
        sleep(remaining)
    return time.monotonic() - (asked + wait)


def paced(take_slot: Callable[[], float], sleep: Callable[[float], None], rate: float) -> None:
    """Take a slot (`take_slot` returns the seconds until it) and sleep until it; a slot missed by more
    than one spacing (1 / rate, at most LATE_SECONDS) is given up for a new one."""
    late = min(LATE_SECONDS, 1.0 / rate)
    for _ in range(LATE_RETRIES + 1):
        asked = time.monotonic()
        if sleep_until_slot(asked, take_slot(), sleep) <= late:
            return


# One statement: take the next slot (never before now, on the database's clock) and say how long to wait.
_TAKE_SLOT = text("""
    INSERT INTO send_budgets (key, next_at)
    VALUES (:key, extract(epoch from clock_timestamp()) + :interval)
    ON CONFLICT (key) DO UPDATE
    SET next_at = greatest(send_budgets.next_at, extract(epoch from clock_timestamp())) + :interval
    RETURNING next_at - :interval - extract(epoch from clock_timestamp())
""")


# How many of the process's pooled connections slot-taking may hold at once. Sends ask for slots
# together (a claimed batch of 64 at once, and again whenever a busy process wakes them late), and
# each held a connection until it was scheduled again: they took the pool past its size, and every
# connection beyond it was a new PostgreSQL backend, opened and closed for one statement (16 a
# second while a fan-out's texts went out; a third of a text's CPU). A slot is one short statement.
SLOT_CONNECTIONS = 2


class DatabaseBudget:
    """The budget in PostgreSQL: evenly spaced slots per key, shared by every process on the database."""

    name = "database"

    def __init__(self, engine: Engine, sleep: Callable[[float], None] = time.sleep):
        # The statement is its own transaction: one round trip per send, not BEGIN, it and COMMIT.
        self.engine, self.sleep = engine.execution_options(isolation_level="AUTOCOMMIT"), sleep
        self._connections = threading.BoundedSemaphore(SLOT_CONNECTIONS)

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return

        def take_slot() -> float:
            asked = time.monotonic()
            with self._connections, self.engine.connect() as connection:
                # The wait is from when the statement runs: time spent queueing for a connection is added,
                # or the send would go that much before its slot.
                queued = time.monotonic() - asked
                return queued + connection.execute(_TAKE_SLOT, {"key": key[:64], "interval": 1.0 / rate}).scalar_one()

        paced(take_slot, self.sleep, rate)


# The same slot in Redis, on Redis's clock (TIME), in one script: no two processes take one slot.
# Keys expire a minute after their last slot. Returns the seconds to wait, as text (Lua numbers
# would come back as integers).
_TAKE_SLOT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 60000)
return string.format('%.6f', slot - now)
"""


class RedisBudget:
    """Evenly spaced slots per key in Redis; `fallback` paces while Redis is unreachable."""

    name = "redis"

    def __init__(self, redis_url: str, fallback: Budget, *, namespace: str = "emergency-send",
                 client: redis.Redis | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.client = client or redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                                     socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self.take_slot = self.client.register_script(_TAKE_SLOT_SCRIPT)
        self.fallback, self.namespace, self.clock, self.sleep = fallback, namespace, clock, sleep
        self._down_until = 0.0

    def acquire(self, key: str, rate: float) -> None:
        if not rate or rate <= 0:
            return
        if self.clock() < self._down_until:
            self.fallback.acquire(key, rate)
            return
        try:
            paced(lambda: float(self.take_slot(keys=[f"{self.namespace}:{key}"], args=[repr(1.0 / rate)])),
                  self.sleep, rate)
        except redis.RedisError as exc:  # ConnectionError, TimeoutError, ...: pace by the fallback
            log.warning("send budget: Redis unreachable (%s); pacing with the %s budget for %.0f s",
                        type(exc).__name__, self.fallback.name, REDIS_RETRY_SECONDS)
            self._down_until = self.clock() + REDIS_RETRY_SECONDS
            self.fallback.acquire(key, rate)
