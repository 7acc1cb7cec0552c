"""Registering, listing and removing a person's push devices; who at a school has push on."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from emergency.directory.models import Person, person_schools
from emergency.directory.principal import Principal
from emergency.errors import Forbidden, NotFound, ValidationFailed
from emergency.push.models import PushSubscription

# A person with more devices than this is more likely a leak than a need: the oldest goes.
MAX_DEVICES_PER_PERSON = 10


def _decoded_length(value: str) -> int | None:
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return None


def _check(endpoint: str, p256dh: str, auth: str, *, allow_http: bool) -> None:
    errors: dict[str, list[str]] = {}
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.netloc:
        errors["endpoint"] = ["must be the https:// URL the browser's push service gave"]
    if _decoded_length(p256dh) != 65 or not p256dh.startswith("B"):
        errors["keys.p256dh"] = ["must be an uncompressed P-256 public key, base64url (65 bytes)"]
    if _decoded_length(auth) != 16:
        errors["keys.auth"] = ["must be the 16-byte authentication secret, base64url"]
    if errors:
        raise ValidationFailed("The push subscription is not valid.", errors=errors)


def _person(principal: Principal) -> int:
    if principal.kind != "person":
        raise Forbidden("Push notifications are for school staff; partners are alerted by SMS and calls.")
    return principal.id


def register(session: Session, principal: Principal, *, endpoint: str, p256dh: str, auth: str,
             user_agent: str = "", token_id: int | None = None, allow_http: bool = False) -> PushSubscription:
    """Store (or take over) the caller's browser subscription; the same endpoint is one device."""
    person_id = _person(principal)
    _check(endpoint, p256dh, auth, allow_http=allow_http)
    subscription = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    if subscription is None:
        subscription = PushSubscription(endpoint=endpoint)
        session.add(subscription)
    # A shared or re-logged-in phone: the device now belongs to whoever registered it last.
    subscription.person_id = person_id
    subscription.p256dh, subscription.auth = p256dh, auth
    subscription.user_agent = (user_agent or "")[:300]
    subscription.token_id = token_id
    session.flush()
    excess = list(session.scalars(select(PushSubscription.id).where(PushSubscription.person_id == person_id)
                                  .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
                                  .offset(MAX_DEVICES_PER_PERSON)))
    if excess:
        session.execute(delete(PushSubscription).where(PushSubscription.id.in_(excess)))
    return subscription


def devices_of(session: Session, principal: Principal) -> list[PushSubscription]:
    """The caller's devices, newest first."""
    return list(session.scalars(select(PushSubscription).where(PushSubscription.person_id == _person(principal))
                                .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())))


def remove(session: Session, principal: Principal, subscription_id: int) -> None:
    """Remove one of the caller's devices (someone else's answers 404, as a missing one does)."""
    subscription = session.get(PushSubscription, subscription_id)
    if subscription is None or subscription.person_id != _person(principal):
        raise NotFound(f"Push subscription {subscription_id} was not found.")
    session.delete(subscription)
    session.flush()


def forget_login(session: Session, token_id: int | None) -> int:
    """A device logged out: the subscriptions it registered go with it; returns how many. Flushes."""
    if token_id is None:
        return 0
    return session.execute(delete(PushSubscription).where(PushSubscription.token_id == token_id)).rowcount


def remove_gone(session: Session, subscription_id: int | None) -> tuple[int, int] | None:
    """The push service said the device is gone: delete it; returns (person_id, devices left). Flushes."""
    subscription = session.get(PushSubscription, subscription_id) if subscription_id else None
    if subscription is None:
        return None
    person_id = subscription.person_id
    session.delete(subscription)
    session.flush()
    left = session.scalar(select(func.count()).select_from(PushSubscription)
                          .where(PushSubscription.person_id == person_id)) or 0
    return person_id, left


def devices_by_person(session: Session, person_ids: list[int]) -> dict[int, list[int]]:
    """Subscription ids per person, for fan-out (one query for the whole school)."""
    devices: dict[int, list[int]] = {}
    if not person_ids:
        return devices
    rows = session.execute(select(PushSubscription.person_id, PushSubscription.id)
                           .where(PushSubscription.person_id.in_(person_ids)).order_by(PushSubscription.id))
    for person_id, subscription_id in rows:
        devices.setdefault(person_id, []).append(subscription_id)
    return devices


def coverage(session: Session, school_id: int) -> dict:
    """How many of a school's staff have push on, and who does not (names only)."""
    members = select(person_schools.c.person_id).where(person_schools.c.school_id == school_id)
    staff = session.execute(select(Person.id, Person.name, Person.role)
                            .where(Person.active.is_(True), Person.id.in_(members))
                            .order_by(Person.name, Person.id)).all()
    counts = dict(session.execute(select(PushSubscription.person_id, func.count())
                                  .where(PushSubscription.person_id.in_(members))
                                  .group_by(PushSubscription.person_id)).all())
    with_push = [s for s in staff if counts.get(s.id)]
    return {
        "school_id": school_id, "staff": len(staff), "staff_with_push": len(with_push),
        "devices": sum(counts.get(s.id, 0) for s in staff),
        "without_push": [{"id": s.id, "name": s.name, "role": s.role} for s in staff if not counts.get(s.id)],
    }


def endpoint_host(endpoint: str) -> str:
    """Which push service a device uses (its host), without the capability URL itself."""
    return urlsplit(endpoint).hostname or ""
