"""Send budgets: one provider rate for every dispatcher together, and slower (never faster) without Redis."""

from __future__ import annotations

import os
import time

import pytest

from emergency.alerts import budgets as budgets_module
from emergency.alerts.budgets import LATE_RETRIES, DatabaseBudget, LocalBudget, RedisBudget, paced

REDIS_URL = os.environ.get("TEST_REDIS_URL")


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class Recording:
    name = "recording"

    def __init__(self):
        self.calls: list[tuple[str, float]] = []

    def acquire(self, key: str, rate: float) -> None:
        self.calls.append((key, rate))


def test_the_local_budget_splits_the_rate_among_live_dispatchers():
    clock = FakeClock()
    budget = LocalBudget(share=lambda: 2, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        budget.acquire("sms:+15005550006", 4.0)
    assert clock.slept == pytest.approx([0.5, 1.0]), "two dispatchers alive: each at 2 a second"


def test_with_redis_the_fallback_is_the_database_budget_on_postgresql_and_the_local_one_otherwise(app):
    from emergency.alerts.setup import build_budget

    engine = app.extensions["db"]["engine"]
    budget = build_budget({"REDIS_URL": "redis://127.0.0.1:1/0"}, engine, lambda: 1)
    assert isinstance(budget, RedisBudget)
    expected = DatabaseBudget if engine.dialect.name == "postgresql" else LocalBudget
    assert isinstance(budget.fallback, expected)
    assert isinstance(build_budget({}, engine, lambda: 1), expected)


def test_the_local_budget_paces_each_key_on_its_own():
    clock = FakeClock()
    budget = LocalBudget(clock=clock, sleep=clock.sleep)
    budget.acquire("sms:a", 1.0)
    budget.acquire("sms:b", 1.0)
    assert clock.slept == []
    budget.acquire("sms:a", 0)  # not paced
    assert clock.slept == []


def test_redis_down_paces_with_the_fallback_and_does_not_retry_redis_at_once():
    fallback = Recording()
    clock = FakeClock()
    clock.now = 1000.0
    budget = RedisBudget("redis://127.0.0.1:1/0", fallback=fallback, clock=clock, sleep=clock.sleep)
    budget.acquire("sms:a", 10.0)
    budget.acquire("sms:a", 10.0)
    assert fallback.calls == [("sms:a", 10.0), ("sms:a", 10.0)]
    assert budget._down_until == pytest.approx(1005.0)


@pytest.mark.postgres
def test_the_database_budget_spaces_every_process_on_one_clock(database_url, app):
    if not database_url.startswith("postgresql"):
        pytest.skip("the database budget is PostgreSQL's")
    slept: list[float] = []
    engine = app.extensions["db"]["engine"]
    # Two dispatchers' budgets sharing one row: together, one slot a second.
    first, second = DatabaseBudget(engine, sleep=slept.append), DatabaseBudget(engine, sleep=slept.append)
    for budget in (first, second, first, second):
        budget.acquire("sms:test", 1.0)
    assert len(slept) == 3
    # Each wait is the next slot minus the (tiny) time already spent: about 1, 2 and 3 seconds.
    assert [round(s) for s in slept] == [1, 2, 3]


@pytest.mark.postgres
def test_slots_are_taken_on_at_most_two_of_the_pools_connections_at_once(database_url, app):
    """A claimed batch of texts asks for slots all at once: on the pool's connections they took it past
    its size, and each connection beyond it was a new PostgreSQL backend for one statement."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database budget is PostgreSQL's")
    import threading

    from sqlalchemy import event

    engine = app.extensions["db"]["engine"]
    budget = DatabaseBudget(engine, sleep=lambda seconds: None)
    held, most = [0], [0]
    lock = threading.Lock()

    def checkout(*_args):
        with lock:
            held[0] += 1
            most[0] = max(most[0], held[0])

    def checkin(*_args):
        with lock:
            held[0] -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        senders = [threading.Thread(target=lambda: [budget.acquire("sms:many", 1e6) for _ in range(5)])
                   for _ in range(12)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    assert 1 <= most[0] <= budgets_module.SLOT_CONNECTIONS


@pytest.mark.postgres
def test_time_spent_waiting_for_a_connection_does_not_make_a_send_early_or_late(database_url, app):
    """The slot's wait is on the database's clock from when the statement ran: a send that queued for a
    connection counts the queueing too. Counted from before the queue, its slot would look 0.3 s gone,
    and it would take new slots until it gave up and went."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database budget is PostgreSQL's")
    import threading

    from sqlalchemy import event

    budget = DatabaseBudget(app.extensions["db"]["engine"], sleep=lambda seconds: None)
    taken: list[str] = []

    def count(*_args):
        taken.append("slot")

    event.listen(app.extensions["db"]["engine"], "before_cursor_execute", count)
    slots = range(budgets_module.SLOT_CONNECTIONS)
    for _ in slots:
        budget._connections.acquire()  # every slot connection busy for 0.3 s
    threading.Timer(0.3, lambda: [budget._connections.release() for _ in slots]).start()
    try:
        budget.acquire("sms:queued", 1.0)  # a fresh key: its slot is now
    finally:
        event.remove(app.extensions["db"]["engine"], "before_cursor_execute", count)
    assert taken == ["slot"], "one slot, taken once"


@pytest.mark.postgres
def test_a_database_budget_slot_is_one_statement_in_autocommit(database_url, app):
    """At 100 texts a second the slot's round trips are the budget's cost: one statement, in autocommit
    (psycopg sends no BEGIN before it and no COMMIT after it)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database budget is PostgreSQL's")
    from sqlalchemy import event

    engine = app.extensions["db"]["engine"]
    budget = DatabaseBudget(engine, sleep=lambda seconds: None)
    budget.acquire("sms:warm", 1000.0)  # the first checkout may ping or connect
    seen: list[tuple[str, bool]] = []

    def record(connection, _cursor, statement, *_args):
        seen.append((statement.split()[0], connection.connection.dbapi_connection.autocommit))

    event.listen(engine, "before_cursor_execute", record)
    try:
        # A slow round trip is not a late send: at 10 a second a slot may be late by 0.1 s.
        budget.acquire("sms:one-trip", 10.0)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen == [("INSERT", True)]


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to run the Redis tests")
def test_two_redis_budgets_together_space_every_send_by_the_rate():
    """Two dispatcher processes sharing 10 a second: slots 0.1 s apart, alternating, never two in one."""
    namespace = f"test-{os.getpid()}-{time.monotonic_ns()}"
    slots: list[tuple[int, float]] = []  # (process, when its send may go, on this clock)

    def budget(number: int) -> RedisBudget:
        return RedisBudget(REDIS_URL, fallback=Recording(), namespace=namespace,
                           sleep=lambda seconds: slots.append((number, time.monotonic() + seconds)))

    budgets = [budget(0), budget(1)]
    began = time.monotonic()
    for n in range(11):
        budgets[n % 2].acquire("sms:a", 10.0)
    # The first goes at once (no sleep); each later one waits for a slot a tenth of a second after the one before.
    assert [number for number, _ in slots] == [1, 0] * 5
    gaps = [later - earlier for (_, earlier), (_, later) in zip([(0, began)] + slots, slots, strict=False)]
    assert gaps == pytest.approx([0.1] * 10, abs=0.02)
    assert all(not b.fallback.calls for b in budgets), "Redis was up: no fallback"
    budgets[0].acquire("sms:b", 10.0)  # another sender number has slots of its own
    assert len(slots) == 10


def test_a_slot_slept_through_is_given_up_for_a_new_one_rather_than_sent_in_a_burst():
    """A process that stalled (a garbage collection, a starved core) wakes after its slot: sending then
    would bunch with the sends of the slots after it. It takes a new slot, a few times at most."""
    waits = iter([-0.2, 0.0])  # the first slot is already 200 ms gone when the answer is read
    taken: list[int] = []
    paced(lambda: taken.append(1) or next(waits), lambda seconds: None, 10.0)
    assert len(taken) == 2
    always_late: list[int] = []
    paced(lambda: always_late.append(1) or -1.0, lambda seconds: None, 10.0)
    assert len(always_late) == LATE_RETRIES + 1, "then it goes: never held back for good"


@pytest.mark.parametrize(("rate", "retaken"), [(100.0, True), (10.0, False)])
def test_a_send_may_be_late_by_one_slot_spacing_at_most(rate, retaken):
    """At 100 a second the slots are 10 ms apart: a send 20 ms late would share a one-second window
    with two more sends than the rate, so it takes a new slot. At 10 a second 20 ms late is within
    the spacing (100 ms) and goes."""
    waits = iter([-0.02, 0.0])
    taken: list[int] = []
    paced(lambda: taken.append(1) or next(waits), lambda seconds: None, rate)
    assert len(taken) == (2 if retaken else 1)
