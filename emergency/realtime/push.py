"""What the domain hands to the realtime layer, and the publishers that deliver it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

EVENT_NAMES = (
    "run.started", "run.updated", "run.action_changed", "run.ended",
    "checkin.recorded", "accountability.updated", "alert.delivery", "ack.recorded", "staff.status", "roster.updated",
)


# Who of the school's staff receives a push: everyone, or only its admins (district admins included).
SCHOOL = "school"
ADMINS = "admins"


@dataclass(frozen=True)
class Push:
    """One live event: staff of the school (`audience`) get `data`; partners get `partner_data` (real runs only).

    A push with a `coalesce_key` is a summary: the latest `version` of each key replaces the earlier
    ones not sent yet (see realtime.coalesce).
    """

    name: str
    school_id: int
    data: dict
    partner_data: dict | None = None
    person_ids: tuple[int, ...] = field(default=())  # also to these people directly (e.g. push alerts)
    audience: str = SCHOOL
    coalesce_key: str | None = None
    version: int = 0


class Publisher(Protocol):
    def publish(self, push: Push) -> None: ...


class NullPublisher:
    """Drops events (CLI commands that need no live push)."""

    def publish(self, push: Push) -> None:
        log.debug("dropped live event %s", push.name)


class RecordingPublisher:
    """Keeps events in memory; for tests."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []

    def publish(self, push: Push) -> None:
        self.pushes.append(push)

    def names(self) -> list[str]:
        return [p.name for p in self.pushes]


class TeePublisher:
    """Delivers to several publishers; tests record what the socket server was given."""

    def __init__(self, *publishers: Publisher) -> None:
        self.publishers = publishers

    def publish(self, push: Push) -> None:
        for publisher in self.publishers:
            publisher.publish(push)


def queue(session: Session, push: Push) -> None:
    """Send `push` once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault("pending_pushes", []).append(push)


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pushes = session.info.pop("pending_pushes", None)
    if not pushes:
        return
    publisher = session.info.get("publisher") or NullPublisher()
    for push in pushes:
        try:
            publisher.publish(push)
        except Exception:  # a dead socket server must never fail a committed change
            log.exception("live push of %s failed", push.name)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop("pending_pushes", None)
