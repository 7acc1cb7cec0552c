"""Coalescing summaries: at most one push per summary key per interval, and always the latest one.

A burst of check-ins moves a run's roll-up hundreds of times a second; every phone of the school
needs the newest numbers, not each step. For a push with a `coalesce_key`:
- leading edge: when the key was quiet for an interval, the push goes out at once;
- otherwise it waits, replacing any waiting push of the same key with a lower version, and the
  latest one goes out when the interval since the last send has passed (trailing edge, always);
- a push older (lower `version`) than one already sent is dropped: pushes of concurrent requests
  reach this point out of order, and a board must never step back.

Each process (web, worker) coalesces its own pushes; clients keep the highest version they saw.
The clock and the scheduler are injected so tests drive time themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from emergency.realtime.push import Publisher, Push

log = logging.getLogger(__name__)

Scheduler = Callable[[float, Callable[[], None]], None]
# Keys idle for this many intervals are forgotten (one key per run: they would pile up for ever).
_FORGET_AFTER_INTERVALS = 100


def timer_schedule(delay: float, callback: Callable[[], None]) -> None:
    """Run `callback` after `delay` seconds on a daemon timer (a greenlet when threading is patched)."""
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()


@dataclass
class _Slot:
    sent_at: float | None = None
    sent_version: int | None = None
    waiting: Push | None = None
    scheduled: bool = False


class CoalescingPublisher:
    """Passes pushes to `inner`; summaries (`coalesce_key` set) at most once per `interval` seconds per key."""

    def __init__(self, inner: Publisher, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 schedule: Scheduler = timer_schedule) -> None:
        self.inner = inner
        self.interval = interval
        self.clock = clock
        self.schedule = schedule
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def publish(self, push: Push) -> None:
        if push.coalesce_key is None or self.interval <= 0:
            self._send(push)
            return
        with self._lock:
            now = self.clock()
            slot = self._slots.get(push.coalesce_key)
            if slot is None:
                self._forget_idle(now)
                slot = self._slots[push.coalesce_key] = _Slot()
            if slot.sent_version is not None and push.version < slot.sent_version:
                return
            if slot.waiting is None and (slot.sent_at is None or now - slot.sent_at >= self.interval):
                slot.sent_at, slot.sent_version = now, push.version
                due = push
            else:
                if slot.waiting is None or push.version >= slot.waiting.version:
                    slot.waiting = push
                due = None
                if not slot.scheduled:
                    slot.scheduled = True
                    delay = max(0.0, slot.sent_at + self.interval - now)
                    self.schedule(delay, lambda key=push.coalesce_key: self._flush(key))
        if due is not None:
            self._send(due)

    def _flush(self, key: str) -> None:
        """The trailing edge: send the latest waiting push of `key`."""
        with self._lock:
            slot = self._slots[key]
            push, slot.waiting, slot.scheduled = slot.waiting, None, False
            if push is None:
                return
            slot.sent_at, slot.sent_version = self.clock(), push.version
        self._send(push)

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, slot in self._slots.items() if not slot.scheduled and slot.sent_at is not None
                and now - slot.sent_at > self.interval * _FORGET_AFTER_INTERVALS]
        for key in idle:
            del self._slots[key]

    def _send(self, push: Push) -> None:
        try:
            self.inner.publish(push)
        except Exception:  # a timer thread has nobody to report to; a dead socket server must not stop it
            log.exception("live push of %s failed", push.name)
