"""Where an alert waits in the district-wide outbox, and where a run stands in it.

Alerts are claimed by (lane, turn, id): every queued alert of a real run before any alert of
a drill, whatever the school; within a lane, round robin by run (a run's n-th alert goes in the
n-th round, so a second school's principal hears within seconds, not after the first school's
whole list). A run that starts while others are sending joins the current round, so it neither
waits behind their backlog nor pushes them back until it has caught up.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, func, or_, select, tuple_
from sqlalchemy.orm import Session

from emergency.alerts.models import DISPATCHED_CHANNELS, DRILL_LANE, QUEUED, REAL_LANE, SENDING, Alert
from emergency.runs.models import Run
from emergency.timeutil import utcnow


def lane_of(run: Run) -> int:
    """Real emergencies, and anything a real run sends, go in the first lane."""
    return REAL_LANE if run.mode == "real" else DRILL_LANE


def current_round(session: Session, lane: int) -> int:
    """The turn the lane is sending now: the lowest turn still due (alerts waiting for a retry do not count)."""
    now = utcnow()
    rounds = [session.scalar(select(func.min(Alert.turn))
                             .where(Alert.channel == channel, Alert.lane == lane, Alert.status == QUEUED,
                                    Alert.next_attempt_at <= now))
              for channel in DISPATCHED_CHANNELS]
    return min((r for r in rounds if r is not None), default=0)


def place(session: Session, run: Run) -> dict:
    """The lane and turn for alerts queued now that need no order among themselves (one round)."""
    lane = lane_of(run)
    return {"lane": lane, "turn": current_round(session, lane)}


# Built once, with parameters: the delivery summary asks for a run's place about once a second, and
# building a statement costs more Python than running it.
_MINE = and_(Alert.run_id == bindparam("run_id"), Alert.channel == bindparam("channel"),
             or_(and_(Alert.status == QUEUED, Alert.next_attempt_at <= bindparam("now")), Alert.status == SENDING))
_ORDER = (Alert.lane, Alert.turn, Alert.id)
_FIRST = select(*_ORDER).where(_MINE).order_by(*_ORDER).limit(1)
_LAST = select(*_ORDER).where(_MINE).order_by(*(column.desc() for column in _ORDER)).limit(1)
_WAITING = select(func.count()).select_from(Alert).where(_MINE)
_AHEAD = select(func.count()).select_from(Alert).where(
    Alert.channel == bindparam("channel"), Alert.run_id != bindparam("run_id"), Alert.status == QUEUED,
    Alert.next_attempt_at <= bindparam("now"),
    tuple_(*_ORDER) < tuple_(bindparam("lane"), bindparam("turn"), bindparam("id")))


def queue_position(session: Session, run_id: int, rates: dict[str, float]) -> dict:
    """Per channel: the run's alerts still to send, how many of other runs go first, and the seconds to finish.

    `rates` are the deployment's sends per second per channel (0: not paced, no estimate).
    """
    now = utcnow()
    channels = {}
    for channel in DISPATCHED_CHANNELS:
        mine = {"run_id": run_id, "channel": channel, "now": now}
        # Dispatchers move alerts on between these reads (each sees the latest commit): the first
        # one found decides whether anything waits, and the last falls back to it.
        first = session.execute(_FIRST, mine).first()
        waiting = (session.scalar(_WAITING, mine) or 0) if first else 0
        if not waiting:
            channels[channel] = {"waiting": 0, "ahead": 0, "eta_seconds": 0.0}
            continue
        last = session.execute(_LAST, mine).first() or first
        ahead = session.scalar(_AHEAD, {**mine, "lane": first.lane, "turn": first.turn, "id": first.id}) or 0
        before_last = session.scalar(_AHEAD, {**mine, "lane": last.lane, "turn": last.turn, "id": last.id}) or 0
        rate = rates.get(channel) or 0
        channels[channel] = {"waiting": waiting, "ahead": ahead,
                             "eta_seconds": round((waiting + before_last) / rate, 1) if rate > 0 else None}
    return channels
