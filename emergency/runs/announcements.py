"""How a run tells its people: runs decide when, the alerts package decides who and how.

Runs sit below alerts (docs/architecture.md, "Layers"), so a run cannot call fan-out itself.
`create_app`, the composition root, hands alerts' announcer in with `listen()`; starting or ending
a run with nobody listening raises rather than alerting nobody in an emergency.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from emergency.runs.models import Run


class Announcer(Protocol):
    """What runs need from the alerts package (alerts.fanout implements it)."""

    def announce(self, session: Session, run: Run, occasion: str, event_seq: int, *,
                 extra: dict | None = None) -> int:
        """Queue the alerts of `occasion` ("start", "update", "all_clear", ...) in the caller's transaction."""

    def withdraw(self, session: Session, run: Run) -> None:
        """The run ended: drop what is still unsent and every pending escalation."""


_announcer: Announcer | None = None


def listen(announcer: Announcer) -> None:
    """Set who turns run events into alerts (called once, by create_app)."""
    global _announcer
    _announcer = announcer


def _current() -> Announcer:
    if _announcer is None:
        raise RuntimeError("Nothing announces runs: create_app() wires alerts.fanout in with listen().")
    return _announcer


def announce(session: Session, run: Run, occasion: str, event_seq: int, *, extra: dict | None = None) -> int:
    """Queue the alerts for `occasion` of `run`; returns how many were queued."""
    return _current().announce(session, run, occasion, event_seq, extra=extra)


def withdraw(session: Session, run: Run) -> None:
    """Drop the run's unsent alerts and pending escalations."""
    _current().withdraw(session, run)
