"""One roll-up read for many phones: the serialised roll-up, kept per run version.

When a school's phones open the board or reconnect together, they all ask for the same roll-up.
An entry is keyed by the run, its version as the database has it (the run's `last_seq`: every
check-in, status and state change appends to the timeline) and the audience (with or without
student names), so every process finds out from its own read whether the entry still holds.
Directory edits (a room renamed or added) move no run's version: an entry is therefore reused for
at most `max_age` seconds. Concurrent readers of a missing entry wait for one of them to build it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

# Entries kept per process: a district's active runs times two audiences, with room to spare.
MAX_ENTRIES = 256


@dataclass(frozen=True)
class Entry:
    """A built roll-up: its serialised body and what the reader needs to know about it."""

    body: bytes
    built_at: float
    meta: Any = None


class RollupCache:
    """Built entries by key, reused for at most `max_age` seconds; `max_age` 0 turns the cache off."""

    def __init__(self, max_age: float, *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.max_age = max_age
        self.clock = clock
        self.max_entries = max_entries
        self.builds = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], tuple[bytes, Any]]) -> Entry:
        """The fresh entry of `key`, built by `build()` -> (body, meta) when there is none."""
        if self.max_age <= 0:
            return self._build(build)
        entry = self._fresh(key)
        if entry is not None:
            return entry
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            entry = self._fresh(key)  # built by the reader we waited for
            if entry is None:
                entry = self._build(build)
                with self._lock:
                    self._entries[key] = entry
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            with self._lock:
                self._building.pop(key, None)
        return entry

    def _fresh(self, key: Hashable) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or self.clock() - entry.built_at > self.max_age:
            return None
        return entry

    def _build(self, build: Callable[[], tuple[bytes, Any]]) -> Entry:
        built_at = self.clock()
        body, meta = build()
        self.builds += 1
        return Entry(body, built_at, meta)
