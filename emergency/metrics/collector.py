"""Gauges computed at scrape time, from the database and this process's connection pool.

Every instance answers them alike (take `max` across instances in queries), and they are right
from the first scrape after a restart: nothing is counted in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emergency.accountability.rollup import accountability_figures
from emergency.alerts.models import QUEUED, SENDING, SENT, Acknowledgement, Alert
from emergency.runs.models import ACTIVE, Run
from emergency.timeutil import utcnow

PENDING = (QUEUED, SENDING, SENT)  # not final yet: the outbox's depth
CHANNELS = ("sms", "voice")
RUN_LABELS = ["run_id", "school_id", "mode"]
MAX_RUNS = 200  # active runs described one by one (a district has a handful at once)


class DatabaseCollector(Collector):
    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield pool_metrics(self.app.extensions["db"]["engine"].pool)
        with self.app.extensions["db"]["sessionmaker"]() as session:
            yield from outbox_metrics(session)
            yield from run_metrics(session)
            session.rollback()


def pool_metrics(pool) -> GaugeMetricFamily:
    """SQLAlchemy pool figures (SQLite's pools have fewer: those missing are left out)."""
    family = GaugeMetricFamily("emergency_db_pool_connections", "Database pool of this process, by state.",
                               labels=["state"])
    for state, method in (("checked_out", "checkedout"), ("idle", "checkedin"), ("size", "size"),
                          ("overflow", "overflow")):
        if callable(getattr(pool, method, None)):
            family.add_metric([state], getattr(pool, method)())
    return family


def outbox_metrics(session: Session) -> Iterable[GaugeMetricFamily]:
    depth = GaugeMetricFamily("emergency_outbox_alerts", "Alerts not final yet, by channel and status.",
                              labels=["channel", "status"])
    counts = {(channel, status): 0 for channel in CHANNELS for status in PENDING}
    for channel, status, count in session.execute(
            select(Alert.channel, Alert.status, func.count()).where(Alert.status.in_(PENDING))
            .group_by(Alert.channel, Alert.status)):
        counts[(channel, status)] = count
    for (channel, status), count in sorted(counts.items()):
        depth.add_metric([channel, status], count)
    yield depth

    now = utcnow()
    oldest = GaugeMetricFamily("emergency_outbox_oldest_due_seconds",
                               "Age of the oldest alert due to be sent, by channel (0 when none waits).",
                               labels=["channel"])
    due = dict(session.execute(select(Alert.channel, func.min(Alert.next_attempt_at))
                               .where(Alert.status == QUEUED, Alert.next_attempt_at <= now)
                               .group_by(Alert.channel)).all())
    for channel in CHANNELS:
        oldest.add_metric([channel], _since(due.get(channel), now) or 0.0)
    yield oldest


def run_metrics(session: Session) -> Iterable[GaugeMetricFamily]:
    """Each active run: time to its latest alert sent, acknowledgements, time to full accountability."""
    active = GaugeMetricFamily("emergency_active_runs", "Runs in progress, by mode.", labels=["mode"])
    last_sent = GaugeMetricFamily("emergency_run_last_alert_sent_seconds",
                                  "Seconds from an active run's start to its latest alert sent.", labels=RUN_LABELS)
    acks = GaugeMetricFamily("emergency_run_acknowledgements", "Acknowledgements of an active run.",
                             labels=RUN_LABELS)
    first_ack = GaugeMetricFamily("emergency_run_first_ack_seconds",
                                  "Seconds from an active run's start to its first acknowledgement.",
                                  labels=RUN_LABELS)
    accounted = GaugeMetricFamily("emergency_run_full_accountability_seconds",
                                  "Seconds from an active run's start until every expected room had reported.",
                                  labels=RUN_LABELS)
    by_mode = {"drill": 0, "real": 0}
    for run in session.scalars(select(Run).where(Run.state == ACTIVE).order_by(Run.id).limit(MAX_RUNS)):
        by_mode[run.mode] = by_mode.get(run.mode, 0) + 1
        key = [str(run.id), str(run.school_id), run.mode]
        sent = _since(run.started_at, session.scalar(select(func.max(Alert.sent_at)).where(Alert.run_id == run.id)))
        if sent is not None:
            last_sent.add_metric(key, sent)
        count, first = session.execute(select(func.count(), func.min(Acknowledgement.acknowledged_at))
                                       .where(Acknowledgement.run_id == run.id)).one()
        acks.add_metric(key, count)
        if first is not None:
            first_ack.add_metric(key, _since(run.started_at, first))
        seconds = accountability_figures(session, run).get("seconds_to_100_percent")
        if seconds is not None:
            accounted.add_metric(key, seconds)
    for mode, count in by_mode.items():
        active.add_metric([mode], count)
    yield from (active, last_sent, acks, first_ack, accounted)


def _since(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from start to end, never negative; aggregates come back naive on SQLite (they are UTC)."""
    if start is None or end is None:
        return None
    start, end = (at if at.tzinfo else at.replace(tzinfo=UTC) for at in (start, end))
    return max(0.0, (end - start).total_seconds())
