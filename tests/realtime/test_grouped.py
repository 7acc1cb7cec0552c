"""Token lookups of phones connecting together are answered by one lookup per batch (realtime.grouped)."""

from __future__ import annotations

import threading
import time

import pytest

from emergency.realtime.grouped import GroupedLookup


class SlowLookup:
    """Answers key -> key * 10; the first call waits until released, so later callers pile up behind it."""

    def __init__(self, fail_on: set | None = None):
        self.calls: list[list] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_on = fail_on or set()

    def __call__(self, keys: list) -> dict:
        self.calls.append(keys)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on & set(keys):
            raise RuntimeError("database went away")
        return {key: key * 10 for key in keys}


def ask_all(grouped: GroupedLookup, keys: list, answers: dict, errors: dict) -> list[threading.Thread]:
    def ask(key):
        try:
            answers[key] = grouped.get(key)
        except RuntimeError as exc:
            errors[key] = exc

    threads = [threading.Thread(target=ask, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    return threads


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_quiet_caller_is_looked_up_at_once_alone():
    lookup = SlowLookup()
    lookup.release.set()
    grouped = GroupedLookup(lookup)
    assert grouped.get(3) == 30
    assert grouped.get(4) == 40
    assert lookup.calls == [[3], [4]]


def test_callers_arriving_during_a_lookup_share_the_next_one_and_each_gets_its_own_answer():
    lookup = SlowLookup()
    grouped = GroupedLookup(lookup)
    answers: dict = {}
    first = ask_all(grouped, [1], answers, {})
    assert lookup.entered.wait(10)
    rest = ask_all(grouped, [2, 3, 4, 5, 3], answers, {})  # the same token twice: asked once
    wait_until(lambda: sum(thread.is_alive() for thread in rest) == len(rest) and grouped._open is not None
               and len(grouped._open.keys) == 4)
    lookup.release.set()
    for thread in first + rest:
        thread.join(10)
    assert answers == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}
    assert lookup.calls[0] == [1] and sorted(lookup.calls[1]) == [2, 3, 4, 5] and len(lookup.calls) == 2


def test_a_failed_lookup_reaches_every_caller_of_its_batch_and_the_next_batch_works():
    lookup = SlowLookup(fail_on={7})
    grouped = GroupedLookup(lookup)
    answers: dict = {}
    errors: dict = {}
    first = ask_all(grouped, [1], answers, errors)
    assert lookup.entered.wait(10)
    rest = ask_all(grouped, [6, 7, 8], answers, errors)
    wait_until(lambda: grouped._open is not None and len(grouped._open.keys) == 3)
    lookup.release.set()
    for thread in first + rest:
        thread.join(10)
    assert answers == {1: 10} and set(errors) == {6, 7, 8}
    assert grouped.get(9) == 90


def test_when_the_caller_running_a_lookup_is_killed_the_others_ask_again():
    class Killed(BaseException):
        pass

    calls: list[list] = []
    entered, release = threading.Event(), threading.Event()

    def lookup(keys):
        calls.append(keys)
        if len(calls) == 1:
            entered.set()
            assert release.wait(10)
        if len(calls) == 2:
            raise Killed  # as gevent's GreenletExit reaches a killed greenlet
        return {key: key * 10 for key in keys}

    grouped = GroupedLookup(lookup)
    answers: dict = {}
    first = ask_all(grouped, [1], answers, {})
    assert entered.wait(10)
    outcome: list = []

    def leader_of_the_next_batch():
        try:
            outcome.append(grouped.get(2))
        except Killed as exc:
            outcome.append(exc)

    killed = threading.Thread(target=leader_of_the_next_batch)
    killed.start()
    wait_until(lambda: grouped._open is not None and len(grouped._open.keys) == 1)
    rest = ask_all(grouped, [3], answers, {})
    wait_until(lambda: grouped._open is not None and len(grouped._open.keys) == 2)
    release.set()
    for thread in [*first, killed, *rest]:
        thread.join(10)
    assert answers == {1: 10, 3: 30} and isinstance(outcome[0], Killed)
    assert calls[2] == [3]


def test_a_batch_holds_at_most_max_keys():
    lookup = SlowLookup()
    grouped = GroupedLookup(lookup, max_keys=2)
    answers: dict = {}
    first = ask_all(grouped, [1], answers, {})
    assert lookup.entered.wait(10)
    rest = ask_all(grouped, [2, 3, 4, 5], answers, {})
    lookup.release.set()
    for thread in first + rest:
        thread.join(10)
    assert answers == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}
    assert sorted(key for call in lookup.calls for key in call) == [1, 2, 3, 4, 5]
    assert all(len(call) <= 2 for call in lookup.calls) and len(lookup.calls) >= 3


@pytest.mark.parametrize("kind", ["refused", "principal"])
def test_socket_connects_get_their_own_principal_or_refusal(app, make_school, make_person, login, kind):
    """Through the socket server: a good token connects as its owner, a bad one is refused with the reason."""
    school = make_school()
    headers = login(make_person("teacher", [school]))
    token = headers["Authorization"].split(" ", 1)[1] if kind == "principal" else "not-a-token"
    socketio = app.extensions["socketio"]
    client = socketio.test_client(app, auth={"token": token})
    assert client.is_connected() is (kind == "principal")
