"""SMS opt-outs (STOP) and opt-ins (START): recorded so we stop trying and call instead."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from emergency.alerts.models import OptOut
from emergency.timeutil import utcnow


def opt_out(session: Session, number: str, keyword: str = "STOP") -> None:
    """Record that `number` replied STOP (idempotent)."""
    if number and session.scalar(select(OptOut.id).where(OptOut.number == number)) is None:
        session.add(OptOut(number=number, keyword=keyword.upper()[:16], opted_out_at=utcnow()))
        session.flush()


def opt_in(session: Session, number: str) -> None:
    """Forget the opt-out of `number` (it replied START)."""
    session.execute(delete(OptOut).where(OptOut.number == number))


def is_opted_out(session: Session, number: str | None) -> bool:
    return bool(number) and session.scalar(select(OptOut.id).where(OptOut.number == number)) is not None
