"""Send budgets: one provider rate for every dispatcher together, and slower (never faster) without Redis."""

from __future__ import annotations

import os
import time

import pytest

from emergency.alerts.budgets import PACER_HEADROOM, DatabaseBudget, LocalBudget, RedisBudget, window

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


def test_the_redis_pacer_lets_a_process_go_faster_than_its_share_but_never_faster_than_the_rate():
    clock = FakeClock()
    pacer = LocalBudget(share=lambda: 3, clock=clock, sleep=clock.sleep, headroom=PACER_HEADROOM)
    for _ in range(3):
        pacer.acquire("sms:a", 10.0)
    assert clock.slept == pytest.approx([1 / 5, 2 / 5]), "three alive: each spaced at 5 a second, not 3.3"
    alone = LocalBudget(share=lambda: 1, clock=clock, sleep=clock.sleep, headroom=PACER_HEADROOM)
    clock.slept.clear()
    for _ in range(2):
        alone.acquire("sms:a", 10.0)
    assert clock.slept == pytest.approx([1 / 10]), "alone: the rate itself, never above it"


def test_the_budget_paces_with_headroom_only_under_the_redis_window(app):
    from emergency.alerts.setup import build_budget

    engine = app.extensions["db"]["engine"]
    budget = build_budget({"REDIS_URL": "redis://127.0.0.1:1/0"}, engine, lambda: 1)
    assert budget.pacer.headroom == PACER_HEADROOM
    assert getattr(budget.fallback, "headroom", 1.0) == 1.0, "without Redis: slower, never faster"
    assert getattr(build_budget({}, engine, lambda: 1), "headroom", 1.0) == 1.0


def test_the_local_budget_paces_each_key_on_its_own():
    clock = FakeClock()
    budget = LocalBudget(clock=clock, sleep=clock.sleep)
    budget.acquire("sms:a", 1.0)
    budget.acquire("sms:b", 1.0)
    assert clock.slept == []
    budget.acquire("sms:a", 0)  # not paced
    assert clock.slept == []


@pytest.mark.parametrize(("rate", "amount", "seconds"), [(100, 100, 1), (2.5, 2, 1), (0.5, 1, 2), (0.3, 1, 4)])
def test_a_rate_becomes_a_window_that_is_never_faster(rate, amount, seconds):
    item = window(rate)
    assert (item.amount, item.get_expiry()) == (amount, seconds)


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


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to run the Redis tests")
def test_two_redis_budgets_together_never_exceed_the_rate():
    namespace = f"test-{os.getpid()}-{time.monotonic_ns()}"
    waits: list[tuple[int, float]] = []

    def budget(number: int) -> RedisBudget:
        def sleep(seconds: float) -> None:
            waits.append((number, seconds))
            time.sleep(seconds)
        return RedisBudget(REDIS_URL, fallback=Recording(), namespace=namespace, sleep=sleep)

    budgets = [budget(0), budget(1)]  # two dispatcher processes sharing one rate
    for n in range(10):
        budgets[n % 2].acquire("sms:a", 10.0)
    assert waits == [], "the first ten of a second go at once"
    budgets[0].acquire("sms:a", 10.0)
    # Counted, not timed: the eleventh, from the other process, waited for a slot of the first second.
    assert waits and {number for number, _ in waits} == {0}
    assert all(0 < seconds <= 1.0 for _, seconds in waits)
    assert all(not b.fallback.calls for b in budgets), "Redis was up: no fallback"
