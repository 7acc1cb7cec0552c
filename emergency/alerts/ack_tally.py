"""The one count of acknowledgements: the board, the alerts list and the after-action report all use it.

A recipient counts when one of their alerts of the run asked for an acknowledgement
(`requires_ack`); they count as acknowledged when they did. Someone who confirmed without being
asked (an admin tapping "Acknowledge" on the board) is recorded, but is not in either number, so
"acknowledged / asked" can never pass 100%.
"""

from __future__ import annotations

from sqlalchemy import bindparam, case, exists, func, select
from sqlalchemy.orm import Session

from emergency.alerts.models import Acknowledgement, Alert


def _asked(session: Session, run_id: int) -> dict[tuple[int | None, int | None], str]:
    """(person_id, partner_id) -> name of every recipient asked to acknowledge."""
    rows = session.execute(select(Alert.person_id, Alert.partner_id, Alert.recipient_name)
                           .where(Alert.run_id == run_id, Alert.requires_ack.is_(True))
                           .order_by(Alert.recipient_name, Alert.id))
    asked: dict[tuple[int | None, int | None], str] = {}
    for person_id, partner_id, name in rows:
        asked.setdefault((person_id, partner_id), name)
    return asked


def _acked(session: Session, run_id: int) -> set[tuple[int | None, int | None]]:
    return {(row.person_id, row.partner_id) for row in session.execute(
        select(Acknowledgement.person_id, Acknowledgement.partner_id).where(Acknowledgement.run_id == run_id))}


def _tally_statement():
    """Recipients of the run asked to acknowledge (each once), and how many of them did."""
    asked = (select(Alert.person_id, Alert.partner_id)
             .where(Alert.run_id == bindparam("run_id"), Alert.requires_ack.is_(True)).distinct().subquery())
    acked = exists().where(Acknowledgement.run_id == bindparam("run_id"),
                           Acknowledgement.person_id.is_not_distinct_from(asked.c.person_id),
                           Acknowledgement.partner_id.is_not_distinct_from(asked.c.partner_id))
    return select(func.count(), func.count(case((acked, 1)))).select_from(asked)


# Counted in the database, built once: the delivery summary asks for it about once a second per run.
_TALLY = _tally_statement()


def ack_tally(session: Session, run_id: int) -> dict:
    """Recipients asked to acknowledge, how many of them did, and the rate (None when nobody was asked)."""
    asked, done = session.execute(_TALLY, {"run_id": run_id}).one()
    return {"asked": asked, "acknowledged": done, "rate": round(done / asked, 3) if asked else None}


def unacknowledged(session: Session, run_id: int) -> list[dict]:
    """Who was asked to acknowledge and has not, by name (no phone numbers)."""
    acked = _acked(session, run_id)
    return [{"kind": "person" if person_id is not None else "partner",
             "id": person_id if person_id is not None else partner_id, "name": name}
            for (person_id, partner_id), name in _asked(session, run_id).items()
            if (person_id, partner_id) not in acked]
