"""Passwords, logins and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from emergency.accounts.models import Account, AuthToken
from emergency.directory.models import Partner, Person, partner_schools, person_schools
from emergency.directory.principal import Principal
from emergency.directory.roles import DISTRICT_ADMIN, PARTNER
from emergency.errors import NotFound, TooManyRequests, Unauthorized, ValidationFailed
from emergency.serving import run_blocking
from emergency.timeutil import utcnow

_hasher = PasswordHasher()
# Compared against when the email is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10
BAD_LOGIN = "The email or password is not correct."


class LoginThrottle:
    """Refuses logins after repeated failures, per email and per client address.

    Kept in memory (per instance) on purpose: it must work before the database is touched,
    and an attacker spread over instances is still slowed by argon2 and the account lock.
    """

    def __init__(self, per_email: int = 5, per_address: int = 30, window: float = 900.0):
        self.per_email, self.per_address, self.window = per_email, per_address, window
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _count(self, key: str, now: float) -> int:
        q = self._failures[key]
        while q and q[0] < now - self.window:
            q.popleft()
        return len(q)

    def check(self, email: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            limited = (self._count("e:" + email, now) >= self.per_email
                       or self._count("a:" + address, now) >= self.per_address)
            if limited:
                oldest = min((q[0] for k in ("e:" + email, "a:" + address) if (q := self._failures[k])),
                             default=now)
                wait = max(1, int(oldest + self.window - now))
                raise TooManyRequests(f"Too many failed logins; try again in {wait} seconds.",
                                      extra={"retry_after": wait})

    def failed(self, email: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures["e:" + email].append(now)
            self._failures["a:" + address].append(now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop("e:" + email, None)


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
    account.failed_logins = 0
    account.locked_until = None
    session.commit()
    return account


def login(session: Session, email: str, password: str, *, ttl_hours: float,
          throttle: LoginThrottle, address: str = "") -> tuple[str, AuthToken, Account]:
    """Check the password and issue a bearer token; the error never says which part was wrong."""
    email = (email or "").strip().lower()
    throttle.check(email, address)
    account = session.scalar(select(Account).where(Account.email == email))
    now = utcnow()
    if account is not None and account.locked_until and account.locked_until > now:
        # Still verify a hash, so a locked account answers in the same time as any other.
        _verify(_DUMMY_HASH, password)
        throttle.failed(email, address)
        raise Unauthorized(BAD_LOGIN)
    ok = _verify(account.password_hash if account and account.password_hash else _DUMMY_HASH, password)
    if not ok or account is None or not account.password_hash or not _owner_active(account):
        throttle.failed(email, address)
        if account is not None:
            account.failed_logins += 1
            if account.failed_logins >= 10:
                account.locked_until = now + timedelta(minutes=15)
            session.commit()
        raise Unauthorized(BAD_LOGIN)
    throttle.succeeded(email)
    token = secrets.token_urlsafe(32)
    row = AuthToken(account_id=account.id, token_hash=token_hash(token), created_at=now,
                    expires_at=now + timedelta(hours=ttl_hours))
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    session.add(row)
    session.commit()
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


def logout(session: Session, token: str) -> None:
    """Revoke the token; a second logout is harmless."""
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()


def authenticate(session: Session, token: str) -> Principal:
    """Turn a bearer token into a Principal, or raise Unauthorized."""
    if not token:
        raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
    # This runs on every request, so it is two plain lookups (the token with its account and owner,
    # then the owner's schools), not an eager-loaded object graph, which costs more Python.
    # On the session's Core connection: the ORM's result machinery is most of a lookup's cost.
    connection = session.connection()
    row = connection.execute(_TOKEN_LOOKUP, {"token_hash": token_hash(token)}).one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("The token is not valid; log in again.")
    if row.expires_at <= utcnow():
        raise Unauthorized("The token has expired; log in again.")
    if row.person_id is not None and row.person_active:
        schools = None if row.person_role == DISTRICT_ADMIN else frozenset(
            connection.scalars(_PERSON_SCHOOLS, {"owner_id": row.person_id}))
        return Principal(row.account_id, "person", row.person_id, row.person_name, row.person_role, row.email,
                         schools, row.home_room_id)
    if row.partner_id is not None and row.partner_active:
        schools = frozenset(connection.scalars(_PARTNER_SCHOOLS, {"owner_id": row.partner_id}))
        return Principal(row.account_id, "partner", row.partner_id, row.partner_name, PARTNER, row.email, schools)
    raise Unauthorized("The account is disabled.")


def live_token_hashes(session: Session, hashes: list[str]) -> set[str]:
    """Which of these token hashes still authenticate: not revoked, not expired, owner active."""
    live: set[str] = set()
    now = utcnow()
    for start in range(0, len(hashes), 500):
        live.update(session.scalars(_LIVE_TOKENS, {"hashes": hashes[start:start + 500], "now": now}))
    return live


# Built once: constructing a statement costs more Python than running it.
_TOKEN_LOOKUP = (select(AuthToken.expires_at, AuthToken.revoked_at, Account.id.label("account_id"), Account.email,
                        Person.id.label("person_id"), Person.name.label("person_name"),
                        Person.role.label("person_role"), Person.active.label("person_active"), Person.home_room_id,
                        Partner.id.label("partner_id"), Partner.name.label("partner_name"),
                        Partner.active.label("partner_active"))
                 .join(Account, Account.id == AuthToken.account_id)
                 .outerjoin(Person, Person.id == Account.person_id)
                 .outerjoin(Partner, Partner.id == Account.partner_id)
                 .where(AuthToken.token_hash == bindparam("token_hash")))
_LIVE_TOKENS = (select(AuthToken.token_hash)
                .join(Account, Account.id == AuthToken.account_id)
                .outerjoin(Person, Person.id == Account.person_id)
                .outerjoin(Partner, Partner.id == Account.partner_id)
                .where(AuthToken.token_hash.in_(bindparam("hashes", expanding=True)),
                       AuthToken.revoked_at.is_(None), AuthToken.expires_at > bindparam("now"),
                       or_(Person.active.is_(True), Partner.active.is_(True))))
_PERSON_SCHOOLS = select(person_schools.c.school_id).where(person_schools.c.person_id == bindparam("owner_id"))
_PARTNER_SCHOOLS = select(partner_schools.c.school_id).where(partner_schools.c.partner_id == bindparam("owner_id"))


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
