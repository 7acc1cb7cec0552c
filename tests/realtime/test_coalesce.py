"""Coalesced summaries: leading edge when quiet, at most one per interval, the latest always arrives."""

from __future__ import annotations

from emergency.realtime.coalesce import CoalescingPublisher
from emergency.realtime.push import Push, RecordingPublisher


class FakeTime:
    """A clock the test moves, and the callbacks scheduled on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, object]] = []

    def clock(self) -> float:
        return self.now

    def schedule(self, delay: float, callback) -> None:
        self.timers.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        """Move the clock, running every callback that falls due, in order."""
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if t[0] <= end), key=lambda t: t[0])
            if not due:
                break
            at, callback = due[0]
            self.timers.remove(due[0])
            self.now = at
            callback()
        self.now = end


def _summary(version: int, run_id: int = 1) -> Push:
    return Push("accountability.updated", 7, {"seq": version}, coalesce_key=f"accountability.updated:{run_id}",
                version=version)


def _setup(interval: float = 0.25):
    time, sent = FakeTime(), RecordingPublisher()
    return time, sent, CoalescingPublisher(sent, interval, clock=time.clock, schedule=time.schedule)


def _versions(sent: RecordingPublisher) -> list[int]:
    return [p.version for p in sent.pushes]


def test_a_quiet_run_gets_its_summary_at_once():
    time, sent, publisher = _setup()
    publisher.publish(_summary(1))
    assert _versions(sent) == [1]
    assert time.timers == []


def test_a_burst_sends_the_first_at_once_and_only_the_latest_after_the_interval():
    time, sent, publisher = _setup()
    for version in range(1, 101):
        publisher.publish(_summary(version))
        time.advance(0.001)
    assert _versions(sent) == [1]
    time.advance(0.25)
    assert _versions(sent) == [1, 100]


def test_a_long_burst_sends_at_most_one_summary_per_interval_and_ends_on_the_latest():
    time, sent, publisher = _setup()
    for version in range(1, 1001):  # 1,000 changes over 2 seconds
        publisher.publish(_summary(version))
        time.advance(0.002)
    time.advance(1.0)
    assert _versions(sent)[-1] == 1000
    assert len(sent.pushes) <= 2 / 0.25 + 2
    assert _versions(sent) == sorted(_versions(sent))


def test_a_summary_older_than_one_sent_is_dropped():
    time, sent, publisher = _setup()
    publisher.publish(_summary(5))
    publisher.publish(_summary(4))  # a concurrent request that committed earlier, delivered later
    time.advance(1.0)
    assert _versions(sent) == [5]


def test_an_older_summary_does_not_replace_the_waiting_newer_one():
    time, sent, publisher = _setup()
    publisher.publish(_summary(1))
    publisher.publish(_summary(3))
    publisher.publish(_summary(2))
    time.advance(0.25)
    assert _versions(sent) == [1, 3]


def test_runs_are_coalesced_separately():
    time, sent, publisher = _setup()
    publisher.publish(_summary(1, run_id=1))
    publisher.publish(_summary(1, run_id=2))
    assert [p.coalesce_key for p in sent.pushes] == ["accountability.updated:1", "accountability.updated:2"]


def test_after_a_quiet_interval_the_next_summary_is_immediate_again():
    time, sent, publisher = _setup()
    publisher.publish(_summary(1))
    publisher.publish(_summary(2))
    time.advance(0.25)
    time.advance(0.3)
    publisher.publish(_summary(3))
    assert _versions(sent) == [1, 2, 3]


def test_other_events_pass_through_unchanged():
    time, sent, publisher = _setup()
    for seq in (1, 2, 3):
        publisher.publish(Push("checkin.recorded", 7, {"seq": seq}))
    assert [p.data["seq"] for p in sent.pushes] == [1, 2, 3]


def test_a_failing_socket_server_does_not_stop_the_trailing_summary():
    class Flaky(RecordingPublisher):
        def publish(self, push):
            if push.version == 1:
                raise RuntimeError("socket server down")
            super().publish(push)

    time, sent = FakeTime(), Flaky()
    publisher = CoalescingPublisher(sent, 0.25, clock=time.clock, schedule=time.schedule)
    publisher.publish(_summary(1))
    publisher.publish(_summary(2))
    time.advance(0.25)
    assert _versions(sent) == [2]


def test_interval_zero_sends_every_summary():
    time, sent, publisher = _setup(interval=0)
    for version in (1, 2, 3):
        publisher.publish(_summary(version))
    assert _versions(sent) == [1, 2, 3]


def test_the_app_coalesces_what_it_sends_to_phones(make_config):
    from emergency.app import create_app

    app = create_app(make_config(LIVE_SUMMARY_INTERVAL=0.25, TESTING=False))
    publisher = app.extensions["publisher"]
    assert isinstance(publisher, CoalescingPublisher) and publisher.interval == 0.25
