"""Sends a provider accepted, recorded together: one transaction for a batch, not one for each send.

A drill's texts go out at 100 a second and a fan-out's pushes at a thousand, while the same process
serves the school's check-ins. Each send's own session, UPDATE and COMMIT cost more Python than the
send itself, so a send thread only notes the provider's answer (`AcceptedSends.note`) and the
dispatcher loop records every noted answer a few times a second (`flush`), in one transaction.

Until then the alert stays `sending` under its claim: a process that dies in between sends it again
when the claim lapses, the duplicate window every claimed alert has, made at most a flush longer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import sessionmaker

from emergency.alerts.delivery import PROVIDER_STATUS, REACHED_PHONE
from emergency.alerts.models import ANSWERED, COMPLETED, DELIVERED, FINAL, SENDING, SENT, Alert
from emergency.db import for_update
from emergency.timeutil import utcnow

# What a provider may answer to a send that reached the recipient (or is on its way): recorded in bulk.
REACHED = frozenset({SENT, DELIVERED, ANSWERED, COMPLETED})


@dataclass(frozen=True)
class Accepted:
    """A provider's answer to one send: its id for the send (None for a push) and the status it gave."""

    alert_id: int
    sid: str | None
    provider_status: str


class AcceptedSends:
    """Answers noted by the send threads, recorded by the dispatcher loop in one transaction."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._noted: list[Accepted] = []
        self._lock = threading.Lock()

    def note(self, alert_id: int, sid: str | None, provider_status: str) -> None:
        """The provider accepted the send; recorded at the next `flush`."""
        with self._lock:
            self._noted.append(Accepted(alert_id, sid, (provider_status or "").strip().lower()))

    def flush(self) -> list[Accepted]:
        """Record every noted answer as a status callback would, in one transaction.

        Only alerts still `sending` are written: the texts and calls in one executemany per status
        reached (the usual answers: "queued", the console's "delivered"), the pushes (no sid) in one
        UPDATE per answer. Returns the answers left for the caller to record one by one: an alert a
        status callback or the device's receipt moved on first, or an answer that is not a plain success.
        """
        with self._lock:
            noted, self._noted = self._noted, []
        plain = [a for a in noted if PROVIDER_STATUS.get(a.provider_status) in REACHED]
        if not plain:
            return noted
        try:
            sending = self._record(plain)
        except Exception:
            # The database did not take them (it is down, a connection dropped): keep them for the next
            # flush, or their alerts would stay `sending` and be sent again when the claims lapse.
            with self._lock:
                self._noted[:0] = noted
            raise
        return [a for a in noted if a.alert_id not in sending]  # only plain answers were looked up

    def _record(self, plain: list[Accepted]) -> set[int]:
        """Write the plain answers whose alerts are still `sending`, in one transaction; returns those ids."""
        with self.sessions() as session:
            # Locked until the commit: a callback for one of these waits, then finds it recorded.
            sending = set(session.scalars(for_update(
                select(Alert.id).where(Alert.id.in_([a.alert_id for a in plain]), Alert.status == SENDING),
                session)))
            now = utcnow()
            with_sid: dict[str, list[dict]] = {}
            without_sid: dict[tuple[str, str], list[int]] = {}  # pushes: one UPDATE ... IN for each answer
            for answer in plain:
                if answer.alert_id not in sending:
                    continue
                reached = PROVIDER_STATUS[answer.provider_status]
                if answer.sid is None:
                    without_sid.setdefault((reached, answer.provider_status), []).append(answer.alert_id)
                else:
                    with_sid.setdefault(reached, []).append({
                        "alert_id": answer.alert_id, "sid": answer.sid, "provider_status": answer.provider_status,
                        "now": now})
            connection = session.connection()
            for reached, rows in with_sid.items():
                connection.execute(recording(reached), rows)  # one executemany
            for (reached, provider_status), ids in without_sid.items():
                connection.execute(recording(reached, by_ids=True), {
                    "alert_ids": ids, "sid": None, "provider_status": provider_status, "now": now})
            session.commit()
        return sending


@cache
def recording(reached: str, *, by_ids: bool = False):
    """UPDATE an alert still SENDING to `reached`, as apply_provider_status would: built once per status.

    `by_ids`: every alert of the list `alert_ids` at once, with the one answer and sid given.
    """
    alerts = Alert.__table__
    now = bindparam("now", type_=alerts.c.sent_at.type)
    values = {"status": reached, "provider_status": bindparam("provider_status"), "provider_sid": bindparam("sid"),
              "sent_at": now, "deadline_at": None}
    if reached in REACHED_PHONE:
        values["delivered_at"] = now
    if reached in FINAL:
        values["finished_at"] = now
    # A Core UPDATE of the table, not an ORM-enabled one: the ORM's bulk-update path costs twice the Python.
    which = (alerts.c.id.in_(bindparam("alert_ids", expanding=True)) if by_ids
             else alerts.c.id == bindparam("alert_id"))
    return alerts.update().where(which, alerts.c.status == SENDING).values(values)
