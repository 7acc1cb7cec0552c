"""The dispatcher: claims due alerts, sends them at the provider's pace, records what happened.

Claiming is atomic, so any number of dispatchers (web threads and `emergency worker`
processes) can run at once without sending an alert twice:
- PostgreSQL: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING;
- SQLite, which ignores SKIP LOCKED: the same single UPDATE ... RETURNING statement inside a
  BEGIN IMMEDIATE transaction, which holds the database's write lock.

A claim sets `deadline_at`. If the process dies mid-send, the alert stays `sending` until the
deadline passes and is then claimed again: the alerts in flight at a crash may be sent twice,
and nothing else.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from emergency import logs
from emergency.alerts.delivery import apply_provider_status, record_failure, summary
from emergency.alerts.models import FAILED, QUEUED, RANK, SENDING, SENT, Alert
from emergency.alerts.providers.base import Provider, ProviderError
from emergency.alerts.webpush import PushSender, device_gone, is_gone
from emergency.metrics import instruments as metrics
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.timeutil import utcnow

log = logging.getLogger(__name__)

UNSUBSCRIBED = 21610
PACING_WINDOW = 5.0  # seconds of sending a claim covers at the configured rate
PUSH_IDLE_CHECK = 0.1  # seconds between looking for push alerts while there are none


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
    push_concurrency: int = 64

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(public_base_url=config["PUBLIC_BASE_URL"], batch=config["DISPATCH_BATCH"],
                   concurrency=config["DISPATCH_CONCURRENCY"], sms_per_second=config["SMS_PER_SECOND"],
                   calls_per_second=config["CALLS_PER_SECOND"], send_timeout=config["SEND_TIMEOUT_SECONDS"],
                   max_attempts=config["MAX_ATTEMPTS"], poll_after=config["POLL_AFTER_SECONDS"],
                   push_concurrency=config["PUSH_CONCURRENCY"])


class Dispatcher:
    """Sends the outbox. `run_once` does one pass; `run_forever` loops until stopped."""

    def __init__(self, sessions: sessionmaker, provider: Provider, settings: Settings,
                 periodic: list[Callable[[Session], object]] | None = None, push: PushSender | None = None):
        self.sessions = sessions
        self.provider = provider
        self.settings = settings
        self.push = push or PushSender(sessions, None, "")
        self.limiters = {"sms": RateLimiter(settings.sms_per_second),
                         "voice": RateLimiter(settings.calls_per_second), "push": RateLimiter(0)}
        self.pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send")
        # Pushes wait on the network, not on a sender's pace: their own, wider pool, so thousands of
        # them neither wait behind SMS nor take the threads the partners' SMS need.
        self.push_pool = ThreadPoolExecutor(max_workers=settings.push_concurrency, thread_name_prefix="push")
        self.periodic = periodic or []  # escalations, reminders: run on every pass
        self.stop_event = threading.Event()

    # -- claiming -----------------------------------------------------------------------------
    def lease_seconds(self) -> float:
        """How long a claim holds: longer than one send can take, including pacing within the batch."""
        return self.settings.send_timeout * 2 + PACING_WINDOW + 5

    def batch_size(self, channel: str) -> int:
        """At most what the channel's rate lets us send within PACING_WINDOW seconds."""
        if channel == "push":  # no sender pace: the push services take them as fast as they come
            return self.settings.batch
        rate = self.settings.sms_per_second if channel == "sms" else self.settings.calls_per_second
        if rate and rate > 0:
            return max(1, min(self.settings.batch, math.ceil(rate * PACING_WINDOW)))
        return self.settings.batch

    def claim(self, channel: str, limit: int | None = None) -> list:
        """Atomically take up to `limit` due alerts of one channel, highest priority first."""
        limit = limit or self.batch_size(channel)
        now = utcnow()
        with self.sessions() as session:
            due = or_(and_(Alert.status == QUEUED, Alert.next_attempt_at <= now),
                      and_(Alert.status == SENDING, Alert.deadline_at < now))
            candidates = select(Alert.id).where(due, Alert.channel == channel) \
                .order_by(Alert.priority, Alert.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            deadline = now + timedelta(seconds=self.lease_seconds())
            claimed = session.execute(
                update(Alert).where(Alert.id.in_(candidates.scalar_subquery()))
                .values(status=SENDING, deadline_at=deadline, attempts=Alert.attempts + 1)
                .returning(Alert.id, Alert.priority, Alert.run_id, Alert.channel, Alert.to_number, Alert.body)
                .execution_options(synchronize_session=False)
            ).all()
            session.commit()
        return sorted(claimed, key=lambda r: (r.priority, r.id))

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
            self.push.flush()
            self._push_summaries(runs)
            claimed += pushes
        self.run_periodic()
        return len(claimed)

    def run_periodic(self) -> None:
        for job in self.periodic:
            logs.set_context()
            try:
                with self.sessions() as session:
                    job(session)
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
        return max(self.settings.concurrency * 2, 1) if channel == "sms" else max(self.batch_size(channel), 1)

    def run_forever(self, idle_sleep: float = 0.5) -> None:
        """Keep the pool busy: claim more as sends finish, rather than waiting for whole batches."""
        log.info("dispatcher started (provider=%s)", self.provider.name)
        in_flight: dict[str, set[Future]] = {"sms": set(), "voice": set(), "push": set()}
        touched: set[int] = set()
        last_summary = last_periodic = last_poll = 0.0
        push_idle_until = 0.0
        while not self.stop_event.is_set():
            metrics.dispatcher_pass()
            try:
                claimed_any = False
                for channel, futures in in_flight.items():
                    room = self.in_flight_limit(channel) - len(futures)
                    if channel == "push" and time.monotonic() < push_idle_until:
                        continue
                    if room > 0:
                        batch = self.claim(channel, min(room, self.batch_size(channel)))
                        if channel == "push":
                            self.push.prepare([c.id for c in batch])
                            # Nothing to push: look again shortly, not on every pass of a busy SMS
                            # fan-out (each claim is a write transaction, and SQLite has one writer).
                            push_idle_until = 0.0 if batch else time.monotonic() + PUSH_IDLE_CHECK
                        for claimed in batch:
                            pool = self.push_pool if channel == "push" else self.pool
                            futures.add(pool.submit(self._send_one, claimed))
                            claimed_any = True
                pending = set().union(*in_flight.values())
                if pending:
                    done, _ = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
                    for futures in in_flight.values():
                        futures -= done
                    for future in done:
                        if future.exception() is None:
                            touched.add(future.result())
                        else:  # the alert stays `sending` and is retried when its lease runs out
                            log.error("recording a send failed", exc_info=future.exception())
                    self.push.flush()
                now = time.monotonic()
                if touched and (now - last_summary > 1.0 or not pending):
                    self._push_summaries(touched)
                    touched, last_summary = set(), now
                if now - last_periodic > 1.0:
                    self.run_periodic()
                    last_periodic = now
                if now - last_poll > 30:
                    self.poll_stuck()
                    last_poll = now
                if not claimed_any and not pending:
                    self.stop_event.wait(idle_sleep)
            except Exception:
                log.exception("dispatcher pass failed; retrying")
                self.stop_event.wait(idle_sleep)
        self.push.flush()
        log.info("dispatcher stopped")

    def stop(self) -> None:
        self.stop_event.set()

    def _callback(self, alert_id: int) -> str:
        return f"{self.settings.public_base_url}/webhooks/twilio/status?alert={alert_id}"

    def _send_one(self, claimed) -> int:
        alert_id, run_id, channel, to, body = claimed.id, claimed.run_id, claimed.channel, claimed.to_number, \
            claimed.body
        logs.set_context(run_id=run_id, alert_id=alert_id)
        self.limiters[channel].acquire()
        try:
            if channel == "sms":
                result = self.provider.send_sms(to, body, status_callback=self._callback(alert_id))
            elif channel == "push":
                self.push.send(alert_id)
                self.push.sent(alert_id)
                return run_id
            else:
                twiml = f"{self.settings.public_base_url}/webhooks/twilio/voice/{alert_id}"
                result = self.provider.place_call(to, twiml_url=twiml, status_callback=self._callback(alert_id))
        except ProviderError as exc:
            self._failed(alert_id, exc)
            return run_id
        except Exception as exc:  # a bug in a provider must not kill the dispatcher
            log.exception("provider crashed sending alert %s", alert_id)
            self._failed(alert_id, ProviderError(str(exc)[:200], temporary=True))
            return run_id
        self._sent(alert_id, result.sid, result.status)
        return run_id

    def _sent(self, alert_id: int, sid: str, provider_status: str) -> None:
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

    def _push_summaries(self, run_ids: set[int]) -> None:
        for run_id in run_ids:
            with self.sessions() as session:
                run = session.get(Run, run_id)
                timeline.push_only(session, run, "alert.delivery", summary(session, run_id))
                session.commit()

    # -- lost callbacks -----------------------------------------------------------------------
    def poll_stuck(self, limit: int = 100) -> int:
        """Ask the provider about alerts stuck in `sent` (status callbacks do get lost)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.poll_after)
        with self.sessions() as session:
            stuck = list(session.scalars(select(Alert).where(Alert.status == SENT, Alert.sent_at < cutoff,
                                                             Alert.provider_sid.is_not(None),
                                                             Alert.channel.in_(("sms", "voice")))
                                         .order_by(Alert.sent_at).limit(limit)))
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


def fall_back_to_voice(session: Session, alert: Alert) -> None:
    """The number replied STOP: remember it, and call instead of texting."""
    from emergency.alerts.optouts import opt_out

    opt_out(session, alert.to_number, "STOP")
    has_call = session.scalar(select(Alert.id).where(Alert.run_id == alert.run_id, Alert.channel == "voice",
                                                     Alert.event_seq == alert.event_seq,
                                                     Alert.to_number == alert.to_number))
    if has_call is None:
        session.add(Alert(run_id=alert.run_id, event_seq=alert.event_seq, occasion=alert.occasion,
                          person_id=alert.person_id, partner_id=alert.partner_id,
                          recipient_name=alert.recipient_name, recipient_role=alert.recipient_role,
                          to_number=alert.to_number, channel="voice", body=alert.body, priority=alert.priority,
                          requires_ack=alert.requires_ack, status=QUEUED, queued_at=utcnow(),
                          next_attempt_at=utcnow()))


