"""Lookups that arrive together, answered together: one statement for the tokens of a reconnecting school.

When a school's Wi-Fi comes back, a thousand phones connect within a second or two and each needs
its token looked up. Each lookup alone costs a pool checkout, a statement and its result handling;
ten tokens in one statement cost about a third as much per token. `GroupedLookup` batches the way a
database groups commits: the first caller of a batch waits only for the lookup already in flight
(none when the service is quiet: no added latency), while callers arriving meanwhile join its batch;
then it runs one lookup for the whole batch and hands every caller its own answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class _Batch:
    def __init__(self) -> None:
        self.keys: dict[Hashable, None] = {}  # ordered, each key once
        self.answers: dict | None = None
        self.error: Exception | None = None
        self.interrupted = False  # its leader was killed (GreenletExit, KeyboardInterrupt) mid-lookup
        self.done = threading.Event()


class GroupedLookup:
    """Calls `lookup(keys) -> {key: answer}` once for every key asked meanwhile; `get(key)` returns its answer.

    At most one lookup runs at a time, with at most `max_keys` keys. An exception raised by the
    lookup is raised to every caller of its batch; if the caller running it is killed instead, the
    others ask again. Threads or greenlets (gevent patches the locks).
    """

    def __init__(self, lookup: Callable[[list], dict], *, max_keys: int = 500) -> None:
        self.lookup = lookup
        self.max_keys = max_keys
        self._lock = threading.Lock()  # guards the open batch
        self._in_flight = threading.Lock()  # held while a lookup runs
        self._open: _Batch | None = None

    def get(self, key: Hashable):
        with self._lock:
            batch = self._open
            if batch is None:
                batch = self._open = _Batch()
            leads = not batch.keys
            batch.keys[key] = None
            if len(batch.keys) >= self.max_keys:
                self._open = None  # full: the next caller starts another
        if leads:
            self._run(batch)
        else:
            batch.done.wait()
            if batch.interrupted:
                return self.get(key)
        if batch.error is not None:
            raise batch.error
        return batch.answers[key]

    def _run(self, batch: _Batch) -> None:
        with self._in_flight:
            with self._lock:
                if self._open is batch:
                    self._open = None  # from here on, callers start the next batch
            try:
                batch.answers = self.lookup(list(batch.keys))
            except Exception as exc:  # every caller of the batch hears of it, not only the first
                batch.error = exc
            except BaseException:  # this caller is being killed: the others must not die with it
                batch.interrupted = True
                raise
            finally:
                batch.done.set()
