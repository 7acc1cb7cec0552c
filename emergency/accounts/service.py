"""Passwords, logins and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import String, any_, bindparam, event, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from emergency.accounts.models import Account, AuthToken
from emergency.db import is_postgres
from emergency.directory.models import Partner, Person, partner_schools, person_schools
from emergency.directory.principal import Principal
from emergency.directory.roles import DISTRICT_ADMIN, PARTNER
from emergency.errors import NotFound, Unauthorized, ValidationFailed
from emergency.serving import run_blocking
from emergency.timeutil import utcnow

_hasher = PasswordHasher()
# Compared against when the email is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10
BAD_LOGIN = "The email or password is not correct."


def token_hash(token: str) -> str:
    """How a bearer token is stored and looked up (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def find_owner(session: Session, email: str) -> Person | Partner | None:
    """The person or partner with this email, if any."""
    email = email.strip().lower()
    return (session.scalar(select(Person).where(Person.email == email))
            or session.scalar(select(Partner).where(Partner.email == email)))


def set_password(session: Session, email: str, password: str) -> Account:
    """Create or update the account of the person or partner with this email."""
    email = email.strip().lower()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
                               errors={"password": [f"shorter than {MIN_PASSWORD_LENGTH} characters"]})
    owner = find_owner(session, email)
    if owner is None:
        raise NotFound(f"No person or partner in the directory has the email {email}.")
    account = session.scalar(select(Account).where(Account.email == email))
    if account is None:
        account = Account(email=email)
        if isinstance(owner, Person):
            account.person_id = owner.id
        else:
            account.partner_id = owner.id
        session.add(account)
    account.password_hash = _hasher.hash(password)
    session.flush()
    return account


def login(session: Session, email: str, password: str, *, ttl_hours: float) -> tuple[str, AuthToken, Account]:
    """Check the password and issue a bearer token; the error never says which part was wrong.

    Repeated failures are slowed down before this runs (accounts/throttle.py), never locked here.
    """
    email = (email or "").strip().lower()
    account = session.scalar(select(Account).where(Account.email == email))
    # An unknown email still costs one hash, so it answers in the same time as a wrong password.
    ok = _verify(account.password_hash if account and account.password_hash else _DUMMY_HASH, password)
    if not ok or account is None or not account.password_hash or not _owner_active(account):
        raise Unauthorized(BAD_LOGIN)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    row = AuthToken(account_id=account.id, token_hash=token_hash(token), created_at=now,
                    expires_at=now + timedelta(hours=ttl_hours))
    account.last_login_at = now
    session.add(row)
    session.flush()
    return token, row, account


def _verify(hash_: str, password: str) -> bool:
    # argon2 costs ~150 ms of CPU with the GIL released: off the event loop when served by gevent.
    return run_blocking(_verify_now, hash_, password)


def _verify_now(hash_: str, password: str) -> bool:
    try:
        return _hasher.verify(hash_, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _owner_active(account: Account) -> bool:
    owner = account.person or account.partner
    return owner is not None and owner.active


def token_id(session: Session, token: str) -> int | None:
    """The id of a bearer token's row (what a device's push subscription remembers), if it exists."""
    return session.scalar(select(AuthToken.id).where(AuthToken.token_hash == token_hash(token))) if token else None


def logout(session: Session, token: str) -> None:
    """Revoke the token; a second logout is harmless."""
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


class PrincipalCache:
    """Principals of recently authenticated tokens, reused for at most `ttl` seconds (0: never).

    For the live channel's connect path, where a school's phones reconnect at once. A token is
    forgotten at its logout on this instance and whenever this process commits a change to an
    account, token, person or partner (`forget_on_change`); a logout or deactivation elsewhere shows
    within `ttl`, and live sockets are re-checked by the session sweeper anyway. Never past the
    token's own expiry.
    """

    def __init__(self, ttl: float, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, object, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, hashed: str) -> Principal | None:
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        until, expires_at, principal = entry
        if self.clock() >= until or expires_at <= utcnow():
            self.forget(hashed)
            return None
        return principal

    def put(self, hashed: str, principal: Principal, expires_at) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= _PRINCIPAL_CACHE_LIMIT:
                self._entries.clear()  # a crude bound: a rebuild costs one lookup per token
            self._entries[hashed] = (self.clock() + self.ttl, expires_at, principal)

    def forget(self, hashed: str) -> None:
        with self._lock:
            self._entries.pop(hashed, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_PRINCIPAL_CACHE_LIMIT = 100_000
_PRINCIPAL_MODELS = (Account, AuthToken, Person, Partner)


def forget_on_change(sessions: sessionmaker, cache: PrincipalCache) -> None:
    """Clear `cache` whenever a session of `sessions` commits a change to an account, token, person or partner."""

    @event.listens_for(sessions, "before_flush")
    def _note(session: Session, _context, _instances) -> None:
        if any(isinstance(obj, _PRINCIPAL_MODELS) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info["principals_changed"] = True

    @event.listens_for(sessions, "after_commit")
    def _clear(session: Session) -> None:
        if session.info.pop("principals_changed", False):
            cache.clear()

    @event.listens_for(sessions, "after_rollback")
    def _discard(session: Session) -> None:
        session.info.pop("principals_changed", None)


def authenticate(session: Session, token: str) -> Principal:
    """Turn a bearer token into a Principal, or raise Unauthorized. Every call reads the token: an API
    request never uses a cached principal (the live channel's connects do, see authenticate_hashes)."""
    if not token:
        raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
    # This runs on every request, so it is one plain statement (the token with its account, owner and
    # the owner's schools, one row per school), not an eager-loaded object graph, which costs more
    # Python and a round trip per relation. On the session's Core connection: the ORM's result
    # machinery is most of a lookup's cost.
    rows = session.connection().execute(_TOKEN_LOOKUP, {"token_hash": token_hash(token)}).all()
    return _principal_of(rows)[0]


def authenticate_hashes(connection: Connection, hashes: list[str],
                        cache: PrincipalCache | None = None) -> dict[str, Principal | Unauthorized]:
    """The principal (or the refusal) of each token hash, from one statement: connects arriving together."""
    rows: dict[str, list] = {hashed: [] for hashed in hashes}
    for row in connection.execute(_TOKENS_LOOKUP, {"token_hashes": list(rows)}):
        rows[row.token_hash].append(row)
    answers: dict[str, Principal | Unauthorized] = {}
    for hashed, found in rows.items():
        try:
            principal, expires_at = _principal_of(found)
        except Unauthorized as refused:
            answers[hashed] = refused
            continue
        if cache is not None:
            cache.put(hashed, principal, expires_at)
        answers[hashed] = principal
    return answers


def _principal_of(rows: list) -> tuple[Principal, object]:
    """(the principal, the token's expiry) from a token's lookup rows (one per school), or raise Unauthorized."""
    if not rows or rows[0].revoked_at is not None:
        raise Unauthorized("The token is not valid; log in again.")
    row = rows[0]
    if row.expires_at <= utcnow():
        raise Unauthorized("The token has expired; log in again.")
    if row.person_id is not None and row.person_active:
        schools = None if row.person_role == DISTRICT_ADMIN else frozenset(
            r.person_school for r in rows if r.person_school is not None)
        return Principal(row.account_id, "person", row.person_id, row.person_name, row.person_role, row.email,
                         schools, row.home_room_id), row.expires_at
    if row.partner_id is not None and row.partner_active:
        schools = frozenset(r.partner_school for r in rows if r.partner_school is not None)
        return Principal(row.account_id, "partner", row.partner_id, row.partner_name, PARTNER, row.email,
                         schools), row.expires_at
    raise Unauthorized("The account is disabled.")


def live_token_hashes(session: Session, hashes: list[str]) -> set[str]:
    """Which of these token hashes still authenticate: not revoked, not expired, owner active."""
    now = utcnow()
    if is_postgres(session):
        # One statement with one array parameter, however many phones: an IN list of thousands of
        # parameters costs far more to build and to parse, every few seconds.
        return set(session.scalars(_LIVE_TOKENS_ANY, {"hashes": hashes, "now": now}))
    live: set[str] = set()
    for start in range(0, len(hashes), 500):
        live.update(session.scalars(_LIVE_TOKENS, {"hashes": hashes[start:start + 500], "now": now}))
    return live


# Built once: constructing a statement costs more Python than running it.
_TOKEN_LOOKUP = (select(AuthToken.expires_at, AuthToken.revoked_at, Account.id.label("account_id"), Account.email,
                        Person.id.label("person_id"), Person.name.label("person_name"),
                        Person.role.label("person_role"), Person.active.label("person_active"), Person.home_room_id,
                        Partner.id.label("partner_id"), Partner.name.label("partner_name"),
                        Partner.active.label("partner_active"), person_schools.c.school_id.label("person_school"),
                        partner_schools.c.school_id.label("partner_school"))
                 .join(Account, Account.id == AuthToken.account_id)
                 .outerjoin(Person, Person.id == Account.person_id)
                 .outerjoin(Partner, Partner.id == Account.partner_id)
                 .outerjoin(person_schools, person_schools.c.person_id == Person.id)
                 .outerjoin(partner_schools, partner_schools.c.partner_id == Partner.id))
_TOKENS_LOOKUP = _TOKEN_LOOKUP.add_columns(AuthToken.token_hash).where(
    AuthToken.token_hash.in_(bindparam("token_hashes", expanding=True)))
_TOKEN_LOOKUP = _TOKEN_LOOKUP.where(AuthToken.token_hash == bindparam("token_hash"))
_STILL_LIVE = (select(AuthToken.token_hash)
               .join(Account, Account.id == AuthToken.account_id)
               .outerjoin(Person, Person.id == Account.person_id)
               .outerjoin(Partner, Partner.id == Account.partner_id)
               .where(AuthToken.revoked_at.is_(None), AuthToken.expires_at > bindparam("now"),
                      or_(Person.active.is_(True), Partner.active.is_(True))))
_LIVE_TOKENS = _STILL_LIVE.where(AuthToken.token_hash.in_(bindparam("hashes", expanding=True)))
_LIVE_TOKENS_ANY = _STILL_LIVE.where(AuthToken.token_hash == any_(bindparam("hashes", type_=ARRAY(String))))


def principal_for(account: Account) -> Principal:
    """The scoped view of an account's owner."""
    if account.person is not None:
        person = account.person
        schools = None if person.role == DISTRICT_ADMIN else frozenset(s.id for s in person.schools)
        return Principal(account.id, "person", person.id, person.name, person.role, account.email, schools,
                         person.home_room_id)
    partner = account.partner
    return Principal(account.id, "partner", partner.id, partner.name, PARTNER, account.email,
                     frozenset(s.id for s in partner.schools))
