"""Live connections follow their token: logout, expiry and a deactivated owner cut them off.

Each instance keeps, for the sockets connected to it, which token each one authenticated with
(its hash, never the token). Every few seconds it asks the database which of those tokens still
authenticate, and disconnects the sockets whose token no longer does. One query per 500 distinct
tokens, however many phones share them; no message queue is needed, so it works the same with one
instance or many, and with or without Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from emergency.accounts.service import live_token_hashes

log = logging.getLogger(__name__)


class LiveSessions:
    """Which token each socket of this instance connected with; finds the ones to cut off."""

    def __init__(self) -> None:
        self._by_sid: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, token_hash: str) -> None:
        with self._lock:
            self._by_sid[sid] = token_hash

    def discard(self, sid: str) -> None:
        with self._lock:
            self._by_sid.pop(sid, None)

    def __len__(self) -> int:
        return len(self._by_sid)

    def stale(self, session: Session) -> dict[str, str]:
        """The sids whose token no longer authenticates (revoked, expired, owner deactivated), with its hash."""
        with self._lock:
            snapshot = dict(self._by_sid)
        if not snapshot:
            return {}
        live = live_token_hashes(session, sorted(set(snapshot.values())))
        session.rollback()  # end the read transaction: the sweep must never hold one open
        return {sid: token_hash for sid, token_hash in snapshot.items() if token_hash not in live}

    def sweep(self, sessions: sessionmaker, disconnect: Callable[[str], None],
              forget: Callable[[str], None] = lambda _hash: None) -> int:
        """Disconnect every stale socket and `forget` its token (a cached principal); returns how many."""
        with sessions() as session:
            stale = self.stale(session)
        for token_hash in set(stale.values()):
            forget(token_hash)
        for sid in stale:
            self.discard(sid)
            try:
                disconnect(sid)
            except Exception:  # a socket that is already gone is not an error
                log.debug("disconnecting %s failed", sid, exc_info=True)
        if stale:
            log.info("disconnected %d live connection(s) whose token is no longer valid", len(stale))
        return len(stale)
