"""The dispatcher: claims due alerts, sends them at the provider's pace, records what happened.

Claiming is atomic, so any number of dispatchers (web threads and `emergency worker`
processes) can run at once without sending an alert twice:
- PostgreSQL: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING;
- SQLite, which ignores SKIP LOCKED: the same single UPDATE ... RETURNING statement inside a
  BEGIN IMMEDIATE transaction, which holds the database's write lock.

Claims are taken in the district-wide order of alerts.queue: real runs before drills, round
robin by run. Sends are paced by a shared budget (alerts.budgets), so all dispatchers together
keep to the provider's rate.

Every dispatcher registers a row in `dispatchers` and beats it every second. A claim records
its dispatcher; when the process dies (kill -9, a lost machine) its row stops beating, and
after DISPATCHER_LIVENESS_SECONDS any other or restarted dispatcher takes its claims over. The
claim's `deadline_at` stays as the backstop for a process that is alive but stuck. Either way,
only the alerts in flight at the crash may be sent twice.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from emergency import logs
from emergency.alerts import outbox
from emergency.alerts.budgets import Budget, LocalBudget
from emergency.alerts.delivery import (
    apply_provider_status,
    push_summary,
    record_failure,
)
from emergency.alerts.models import (
    DISPATCHED_CHANNELS,
    FAILED,
    QUEUED,
    RANK,
    SENDING,
    SENT,
    Alert,
    DispatcherHeartbeat,
)
from emergency.alerts.optouts import opt_out
from emergency.alerts.providers.base import Provider, ProviderError
from emergency.alerts.queue import queue_position
from emergency.alerts.recording import AcceptedSends
from emergency.alerts.webpush import PushSender, device_gone, is_gone
from emergency.db import for_update
from emergency.metrics import instruments as metrics
from emergency.runs.models import Run
from emergency.timeutil import utcnow

log = logging.getLogger(__name__)

UNSUBSCRIBED = 21610
PACING_WINDOW = 5.0  # seconds of sending a claim covers at the configured rate
# A paced dispatcher claims only what it will send within this long: a real run that starts now
# waits behind at most that many already-claimed drill texts.
CLAIM_AHEAD_SECONDS = 0.5
# When sends take longer, a dispatcher claims ahead for as long as they take, up to this: the most a
# real run waits behind drill texts already claimed.
MAX_CLAIM_AHEAD_SECONDS = 1.5
# Sends are spaced at this share of the configured rate: evenly spaced sends at exactly the rate put
# one more into a provider's one-second window whenever one of them is a few milliseconds late on
# the way; 5 % under it absorbs 50 ms of such jitter in every second.
PACE = 0.95
# A dispatcher with nothing in flight pushes its runs' delivery summaries at most this often.
SUMMARY_AFTER_IDLE = 0.5
# A channel whose last claim found nothing is not asked again for this long while the other is busy.
EMPTY_CLAIM_PAUSE = 0.25
# Sends a provider accepted are recorded together, at most this long after (alerts.recording).
RECORD_SECONDS = 0.1


@dataclass
class Settings:
    public_base_url: str
    batch: int = 50
    concurrency: int = 16
    sms_per_second: float = 0.0
    calls_per_second: float = 1.0
    send_timeout: float = 15.0
    max_attempts: int = 6
    poll_after: float = 180.0
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    liveness_seconds: float = 5.0
    # The sender pool: SMS_PER_SECOND is each number's own rate. Empty: the provider's one sender.
    senders: list[str] = field(default_factory=list)
    push_concurrency: int = 256

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(public_base_url=config["PUBLIC_BASE_URL"], batch=config["DISPATCH_BATCH"],
                   concurrency=config["DISPATCH_CONCURRENCY"], sms_per_second=config["SMS_PER_SECOND"],
                   calls_per_second=config["CALLS_PER_SECOND"], send_timeout=config["SEND_TIMEOUT_SECONDS"],
                   max_attempts=config["MAX_ATTEMPTS"], poll_after=config["POLL_AFTER_SECONDS"],
                   liveness_seconds=config["DISPATCHER_LIVENESS_SECONDS"], senders=sender_pool(config),
                   push_concurrency=config["PUSH_CONCURRENCY"])

    def rate(self, channel: str) -> float:
        """The deployment's sends per second on a channel: every sender number's rate together."""
        if channel == "sms":
            return self.sms_per_second * max(len(self.senders), 1)
        if channel == "push":  # push services set no sender pace; a 429 says when to slow down
            return 0.0
        return self.calls_per_second

    def sender_for(self, to_number: str | None) -> str | None:
        """The pool number a recipient always hears from, so replies thread (a stable hash, not hash())."""
        if not self.senders or not to_number:
            return None
        return self.senders[zlib.crc32(to_number.encode()) % len(self.senders)]


def sender_pool(config) -> list[str]:
    """TWILIO_FROM_NUMBERS (comma separated), else TWILIO_FROM_NUMBER; none with a messaging service."""
    if config.get("ALERT_PROVIDER") != "twilio":
        return []
    numbers = [n.strip() for n in (config.get("TWILIO_FROM_NUMBERS") or "").split(",") if n.strip()]
    return numbers or ([config["TWILIO_FROM_NUMBER"]] if config.get("TWILIO_FROM_NUMBER") else [])


class Dispatcher:
    """Sends the outbox. `run_once` does one pass; `run_forever` loops until stopped.

    Each claim, each send's record, each heartbeat and each periodic job is a job of its own, in a
    short session of its own that it commits: those commits are the dispatcher's transaction boundaries.
    """

    def __init__(self, sessions: sessionmaker, provider: Provider, settings: Settings,
                 periodic: list[Callable[[Session], object]] | None = None, budget: Budget | None = None,
                 push: PushSender | None = None):
        self.sessions = sessions
        self.provider = provider
        self.settings = settings
        self.budget = budget or LocalBudget(self.live_dispatchers)
        self.push = push or PushSender(sessions, None, "")
        self.accepted = AcceptedSends(sessions)
        self.pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send")
        # Pushes wait on the network, not on a sender's pace: their own, wider pool, so thousands of
        # them neither wait behind SMS nor take the threads the partners' SMS need.
        self.push_pool = ThreadPoolExecutor(max_workers=settings.push_concurrency, thread_name_prefix="push")
        self.periodic = periodic or []  # escalations, reminders: run on every pass
        self.stop_event = threading.Event()
        # Set when this process commits new alerts (wake): the loop claims at once instead of after
        # its idle sleep, so a run's first text and push leave within milliseconds of the start.
        self.due = threading.Event()
        self.identity: int | None = None
        self._beaten_at = 0.0
        self._live = (0.0, 1)  # (when counted, live dispatchers)
        # Seconds a send takes once its budget allows it (provider request and recording), smoothed.
        self.send_seconds = {"sms": 0.0, "voice": 0.0, "push": 0.0}

    # -- liveness -----------------------------------------------------------------------------
    def heartbeat(self) -> int:
        """Register this dispatcher, or say it is still alive; returns its id."""
        now = utcnow()
        with self.sessions() as session:
            beat = session.get(DispatcherHeartbeat, self.identity) if self.identity else None
            if beat is None:
                # Rows of dispatchers dead for an hour tell nobody anything any more.
                session.execute(delete(DispatcherHeartbeat)
                                .where(DispatcherHeartbeat.seen_at < now - timedelta(hours=1)))
                beat = DispatcherHeartbeat(host=socket.gethostname()[:255], pid=os.getpid(), started_at=now)
                session.add(beat)
            beat.seen_at = now
            session.commit()
            self.identity = beat.id
        self._beaten_at = time.monotonic()
        return self.identity

    def _beat_if_due(self) -> None:
        if self.identity is None or time.monotonic() - self._beaten_at >= self.beat_interval():
            self.heartbeat()

    def beat_interval(self) -> float:
        return max(self.settings.liveness_seconds / 5, 0.05)

    def _keep_beating(self) -> None:
        """A thread of its own: a send that takes long must not make the dispatcher look dead."""
        while not self.stop_event.wait(self.beat_interval()):
            try:
                self.heartbeat()
            except Exception:
                log.exception("dispatcher heartbeat failed")

    def unregister(self) -> None:
        """A clean stop: nothing is in flight any more, so nobody need wait for this dispatcher."""
        if self.identity is not None:
            with self.sessions() as session:
                session.execute(delete(DispatcherHeartbeat).where(DispatcherHeartbeat.id == self.identity))
                session.commit()
            self.identity = None

    def _alive_since(self):
        return utcnow() - timedelta(seconds=self.settings.liveness_seconds)

    def live_dispatchers(self) -> int:
        """How many dispatchers beat recently (counted at most once a second); the local budget's share."""
        counted_at, live = self._live
        if time.monotonic() - counted_at > 1.0:
            with self.sessions() as session:
                live = session.scalar(select(func.count()).select_from(DispatcherHeartbeat)
                                      .where(DispatcherHeartbeat.seen_at >= self._alive_since())) or 1
                session.rollback()
            self._live = (time.monotonic(), live)
        return live

    # -- claiming -----------------------------------------------------------------------------
    def lease_seconds(self) -> float:
        """How long a claim holds: longer than one send can take, including pacing within the batch."""
        return self.settings.send_timeout * 2 + PACING_WINDOW + 5

    def batch_size(self, channel: str) -> int:
        """At most what the channel's rate lets us send within PACING_WINDOW seconds.

        Pushes have no pace: a claim fills the push pool, since each claim (and the load of its
        devices and the record of its sends) costs a few round trips whatever its size.
        """
        if channel == "push":
            return max(self.settings.push_concurrency, 1)
        rate = self.settings.rate(channel)
        if rate and rate > 0:
            return max(1, min(self.settings.batch, math.ceil(rate * PACING_WINDOW)))
        return self.settings.batch

    def claim(self, channel: str, limit: int | None = None) -> list:
        """Atomically take up to `limit` due alerts of one channel, in the district-wide order."""
        limit = limit or self.batch_size(channel)
        self._beat_if_due()
        now = utcnow()
        with self.sessions() as session:
            alive = select(DispatcherHeartbeat.id).where(DispatcherHeartbeat.seen_at >= self._alive_since())
            # In flight with a dispatcher that stopped beating, or past the lease: it will never be recorded.
            abandoned = or_(Alert.deadline_at < now, Alert.claimed_by.not_in(alive))
            due = or_(and_(Alert.status == QUEUED, Alert.next_attempt_at <= now),
                      and_(Alert.status == SENDING, abandoned))
            candidates = for_update(select(Alert.id).where(Alert.channel == channel, due)
                                    .order_by(Alert.lane, Alert.turn, Alert.id).limit(limit), session, skip_locked=True)
            deadline = now + timedelta(seconds=self.lease_seconds())
            claimed = session.execute(
                update(Alert).where(Alert.id.in_(candidates.scalar_subquery()))
                .values(status=SENDING, deadline_at=deadline, attempts=Alert.attempts + 1,
                        claimed_by=self.identity)
                .returning(Alert.id, Alert.lane, Alert.turn, Alert.run_id, Alert.channel, Alert.to_number,
                           Alert.body)
                .execution_options(synchronize_session=False)
            ).all()
            session.commit()
        return sorted(claimed, key=lambda r: (r.lane, r.turn, r.id))

    # -- sending ------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch per channel, send it all, run the periodic jobs; returns alerts handled."""
        # Each channel is claimed separately, so slow-paced calls never hold up SMS.
        metrics.dispatcher_pass()
        claimed = self.claim("sms") + self.claim("voice")
        pushes = self.claim("push")
        if claimed or pushes:
            self.push.prepare([p.id for p in pushes])
            runs = set(self.push_pool.map(self._send_one, pushes)) | set(self.pool.map(self._send_one, claimed))
            self.record_accepted()
            self._push_summaries(runs)
            claimed += pushes
        self.run_periodic()
        return len(claimed)

    def run_periodic(self) -> None:
        """Run each periodic job in a session of its own, committed when the job returns."""
        for job in self.periodic:
            logs.set_context()
            try:
                with self.sessions() as session:
                    job(session)
                    session.commit()
            except Exception:
                log.exception("periodic job %s failed", getattr(job, "__name__", job))

    def drain(self, max_passes: int = 10_000) -> int:
        """Send until nothing is due (tests, benchmarks, the CLI)."""
        total = 0
        for _ in range(max_passes):
            handled = self.run_once()
            total += handled
            if not handled:
                break
        return total

    def in_flight_limit(self, channel: str) -> int:
        """How many alerts of a channel may be claimed and not yet recorded at once."""
        if channel == "push":
            return max(self.settings.push_concurrency * 2, 1)
        most = max(self.settings.concurrency * 2, 1)
        rate = self.settings.rate(channel)
        if rate and rate > 0:
            # This process's share of the rate for CLAIM_AHEAD_SECONDS, or for as long as a send takes
            # when that is longer (a slow provider, a busy machine): fewer in flight than the share
            # times the send time cannot keep up with the rate (Little's law). Plus one.
            ahead = min(max(CLAIM_AHEAD_SECONDS, 2 * self.send_seconds[channel]), MAX_CLAIM_AHEAD_SECONDS)
            return max(1, min(most, math.ceil(rate / self.live_dispatchers() * ahead) + 1))
        return most if channel == "sms" else max(self.batch_size(channel), 1)

    def claim_room(self, channel: str, in_flight: int, since_empty: float) -> int:
        """How many alerts of a channel to claim now (0: do not ask the database this time round).

        Claims refill the in-flight window once half of it has gone, rather than one alert per
        finished send: at 100 texts a second that is a tenth of the claim round trips. A channel
        found empty is asked again after EMPTY_CLAIM_PAUSE, not on every pass.
        """
        if since_empty < EMPTY_CLAIM_PAUSE:
            return 0
        limit = self.in_flight_limit(channel)
        room = limit - in_flight
        if room <= 0 or (in_flight and room < max(1, limit // 2)):
            return 0
        return min(room, self.batch_size(channel))

    def run_forever(self, idle_sleep: float = 0.5) -> None:
        """Keep the pool busy: claim more as sends finish, rather than waiting for whole batches."""
        log.info("dispatcher started (provider=%s, send budget=%s)", self.provider.name, self.budget.name)
        self.heartbeat()
        beating = threading.Thread(target=self._keep_beating, name="dispatcher-heartbeat", daemon=True)
        beating.start()
        in_flight: dict[str, set[Future]] = {"sms": set(), "voice": set(), "push": set()}
        # Sends report here as they finish: waiting on this costs the same with 10 or 1,000 in flight,
        # where concurrent.futures.wait() walks every pending future on every pass.
        finished = Finished()
        empty_at = {"sms": 0.0, "voice": 0.0, "push": 0.0}  # when a claim of the channel last found nothing
        touched: set[int] = set()
        last_summary = last_periodic = last_poll = last_record = 0.0
        unrecorded = False  # a send finished since the accepted sends were last recorded
        while not self.stop_event.is_set():
            metrics.dispatcher_pass()
            if self.due.is_set():  # cleared before claiming: a wake during the claim is not lost
                self.due.clear()
                empty_at = dict.fromkeys(empty_at, 0.0)
            try:
                claimed_any = False
                for channel, futures in in_flight.items():
                    room = self.claim_room(channel, len(futures), time.monotonic() - empty_at[channel])
                    if room:
                        batch = self.claim(channel, room)
                        empty_at[channel] = 0.0 if batch else time.monotonic()
                        if channel == "push":
                            self.push.prepare([c.id for c in batch])
                        for claimed in batch:
                            pool = self.push_pool if channel == "push" else self.pool
                            future = pool.submit(self._send_one, claimed)
                            futures.add(future)
                            future.add_done_callback(finished.add)
                            claimed_any = True
                pending = any(in_flight.values())
                if pending:
                    done = finished.take(timeout=0.05)
                    unrecorded = unrecorded or bool(done)
                    for futures in in_flight.values():
                        futures -= done
                    for future in done:
                        if future.exception() is None:
                            touched.add(future.result())
                        else:  # the alert stays `sending` and is retried when its lease runs out
                            log.error("recording a send failed", exc_info=future.exception())
                # One transaction records every send accepted meanwhile: a few times a second while
                # texts or a fan-out go, and at once when nothing is left in flight.
                if unrecorded and (time.monotonic() - last_record >= RECORD_SECONDS or not any(in_flight.values())):
                    self.record_accepted()
                    unrecorded, last_record = False, time.monotonic()
                now = time.monotonic()
                # Each dispatcher pushes a run's delivery summary; together about once a second, and
                # soon after its sends stop (not after every send of a queue's tail: a summary costs
                # a dozen queries, and the sends still going would wait for the CPU).
                if touched and (now - last_summary > self.live_dispatchers()
                                or (not pending and now - last_summary > SUMMARY_AFTER_IDLE)):
                    self._push_summaries(touched)
                    touched, last_summary = set(), now
                if now - last_periodic > 1.0:
                    self.run_periodic()
                    last_periodic = now
                if now - last_poll > 30:
                    last_poll = now  # before: a poll that fails must not run again on every pass
                    self.poll_stuck()
                if not claimed_any and not pending:
                    self.due.wait(idle_sleep)
            except Exception:
                log.exception("dispatcher pass failed; retrying")
                self.stop_event.wait(idle_sleep)
        # Let what was claimed be sent and recorded, then tell the others they need not wait for us.
        wait(set().union(*in_flight.values()), timeout=self.lease_seconds())
        self.record_accepted()
        try:
            self.unregister()
        except Exception:
            log.exception("could not unregister the dispatcher; its claims lapse in %s s",
                          self.settings.liveness_seconds)
        log.info("dispatcher stopped")

    def stop(self) -> None:
        self.stop_event.set()
        self.due.set()

    def wake(self) -> None:
        """New alerts were committed (in this process, or elsewhere: alerts.wakeup): claim now."""
        self.due.set()

    def _callback(self, alert_id: int) -> str:
        return f"{self.settings.public_base_url}/webhooks/twilio/status?alert={alert_id}"

    def _send_one(self, claimed) -> int:
        alert_id, run_id, channel, to, body = claimed.id, claimed.run_id, claimed.channel, claimed.to_number, \
            claimed.body
        logs.set_context(run_id=run_id, alert_id=alert_id)
        sender = self.settings.sender_for(to)
        # Each number of the pool has its own SMS rate; calls share the account's rate; pushes are not paced.
        if channel == "sms":
            self.budget.acquire(f"sms:{sender or 'default'}", self.settings.sms_per_second * PACE)
        else:
            self.budget.acquire(channel, self.settings.rate(channel) * PACE)
        # Only a pool passes `sender`: providers without one keep their plain signature.
        via = {"sender": sender} if sender else {}
        began = time.monotonic()
        try:
            return self._send_and_record(alert_id, run_id, channel, to, body, via)
        finally:
            self.send_seconds[channel] += (time.monotonic() - began - self.send_seconds[channel]) * 0.2

    def _send_and_record(self, alert_id: int, run_id: int, channel: str, to: str, body: str, via: dict) -> int:
        try:
            if channel == "sms":
                result = self.provider.send_sms(to, body, status_callback=self._callback(alert_id), **via)
            elif channel == "push":
                result = self.push.send(alert_id)
            else:
                twiml = f"{self.settings.public_base_url}/webhooks/twilio/voice/{alert_id}"
                result = self.provider.place_call(to, twiml_url=twiml, status_callback=self._callback(alert_id),
                                                  **via)
        except ProviderError as exc:
            self._failed(alert_id, exc)
            return run_id
        except Exception as exc:  # a bug in a provider must not kill the dispatcher
            log.exception("provider crashed sending alert %s", alert_id)
            self._failed(alert_id, ProviderError(str(exc)[:200], temporary=True))
            return run_id
        self.accepted.note(alert_id, result.sid, result.status)
        return run_id

    def record_accepted(self) -> None:
        """Record the sends accepted since the last call: together, and one by one what that leaves."""
        for answer in self.accepted.flush():
            self._settle(answer.alert_id, answer.sid, answer.provider_status)

    def _settle(self, alert_id: int, sid: str | None, provider_status: str) -> None:
        """Record one accepted send whose alert a callback moved on first, or whose answer is unusual."""
        with self.sessions() as session:
            alert = session.get(Alert, alert_id, with_for_update=True)
            alert.provider_sid = alert.provider_sid or sid
            alert.deadline_at = None
            alert.sent_at = alert.sent_at or utcnow()
            # A status callback can beat us here and have said more than "sent": never move back.
            if RANK.get(alert.status, 0) < RANK[SENT]:
                alert.status = SENT
            apply_provider_status(session, alert, provider_status)
            session.commit()

    def _failed(self, alert_id: int, error: ProviderError) -> None:
        with self.sessions() as session:
            alert = session.get(Alert, alert_id)
            alert.error_code = error.code
            alert.error_message = (error.reason or error.message or "send failed")[:300]
            alert.deadline_at = None
            if error.temporary and alert.attempts < self.settings.max_attempts:
                delay = min(self.settings.backoff_base * 2 ** (alert.attempts - 1), self.settings.backoff_max)
                delay *= random.uniform(0.5, 1.5)
                if error.retry_after is not None:  # the provider said how long: never sooner
                    delay = max(delay, min(error.retry_after, self.settings.backoff_max * 4))
                alert.status = QUEUED
                metrics.alert_retried(alert.channel)
                alert.next_attempt_at = utcnow() + timedelta(seconds=delay)
                log.warning("alert %s: temporary failure (%s), retry %s in %.1fs", alert_id,
                            alert.error_message, alert.attempts, delay)
            else:
                alert.status = FAILED
                alert.finished_at = utcnow()
                log.warning("alert %s: failed for good (%s)", alert_id, alert.error_message)
                if is_gone(alert, error):
                    device_gone(session, alert)
                record_failure(session, alert)
                if error.code == UNSUBSCRIBED and alert.channel == "sms":
                    fall_back_to_voice(session, alert)
            session.commit()

    def rates(self) -> dict[str, float]:
        return {channel: self.settings.rate(channel) for channel in DISPATCHED_CHANNELS}

    def _push_summaries(self, run_ids: set[int]) -> None:
        for run_id in run_ids:
            with self.sessions() as session:
                run = session.get(Run, run_id)
                push_summary(session, run, queue=queue_position(session, run_id, self.rates()))
                session.commit()

    # -- lost callbacks -----------------------------------------------------------------------
    def poll_stuck(self, limit: int = 100) -> int:
        """Ask the provider about alerts stuck in `sent` (status callbacks do get lost)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.poll_after)
        with self.sessions() as session:
            # Plain rows, not objects: they are read after this session has ended.
            stuck = session.execute(select(Alert.id, Alert.channel, Alert.provider_sid).where(
                Alert.status == SENT, Alert.sent_at < cutoff, Alert.provider_sid.is_not(None),
                Alert.channel.in_(("sms", "voice"))).order_by(Alert.sent_at).limit(limit)).all()
            session.rollback()
        changed = 0
        for alert in stuck:
            try:
                status, code = self.provider.fetch_status(alert.channel, alert.provider_sid)
            except ProviderError as exc:
                log.info("poll of alert %s failed: %s", alert.id, exc.message)
                continue
            with self.sessions() as session:
                fresh = session.get(Alert, alert.id)
                if apply_provider_status(session, fresh, status, code):
                    changed += 1
                session.commit()
        return changed


class Finished:
    """Futures that finished, handed from the send threads to the dispatcher loop."""

    def __init__(self):
        self._done: collections.deque[Future] = collections.deque()
        self._ready = threading.Event()

    def add(self, future: Future) -> None:
        self._done.append(future)
        self._ready.set()

    def take(self, timeout: float) -> set[Future]:
        """Those finished since the last take, waiting up to `timeout` for the first."""
        self._ready.wait(timeout)
        self._ready.clear()  # before taking: one added meanwhile sets it again
        taken = set()
        while self._done:
            taken.add(self._done.popleft())
        return taken


def fall_back_to_voice(session: Session, alert: Alert) -> None:
    """The number replied STOP: remember it, and call instead of texting."""
    opt_out(session, alert.to_number, "STOP")
    outbox.call_instead(session, session.get(Run, alert.run_id), alert)


