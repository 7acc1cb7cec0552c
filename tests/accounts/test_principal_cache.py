"""The connect path's principal cache: brief, never past the token's expiry, forgotten on change."""

from __future__ import annotations

from datetime import timedelta

from emergency.accounts.service import PrincipalCache
from emergency.directory.principal import Principal
from emergency.timeutil import utcnow

PRINCIPAL = Principal(1, "person", 2, "Ana", "teacher", "ana@example.org", frozenset({3}))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_principal_is_reused_within_the_ttl_only():
    clock = Clock()
    cache = PrincipalCache(5.0, clock=clock)
    cache.put("h", PRINCIPAL, utcnow() + timedelta(hours=1))

    clock.now += 4.9
    assert cache.get("h") == PRINCIPAL
    clock.now += 0.2
    assert cache.get("h") is None


def test_a_principal_is_never_reused_past_its_tokens_expiry():
    cache = PrincipalCache(60.0)
    cache.put("h", PRINCIPAL, utcnow() - timedelta(seconds=1))

    assert cache.get("h") is None


def test_forget_and_a_zero_ttl():
    cache = PrincipalCache(5.0)
    cache.put("h", PRINCIPAL, utcnow() + timedelta(hours=1))
    cache.forget("h")
    assert cache.get("h") is None

    off = PrincipalCache(0.0)
    off.put("h", PRINCIPAL, utcnow() + timedelta(hours=1))
    assert off.get("h") is None


def test_a_committed_change_to_a_person_clears_the_cache(app, session, make_school, make_person):
    cache = app.extensions["principal_cache"]
    person = make_person("teacher", [make_school()])
    cache.put("h", PRINCIPAL, utcnow() + timedelta(hours=1))

    person.name = "Renamed"
    session.commit()

    assert cache.get("h") is None


def test_a_rolled_back_change_keeps_the_cache(app, session, make_school, make_person):
    cache = app.extensions["principal_cache"]
    person = make_person("teacher", [make_school()])
    session.commit()
    cache.put("h", PRINCIPAL, utcnow() + timedelta(hours=1))

    person.name = "Renamed"
    session.flush()
    session.rollback()

    assert cache.get("h") == PRINCIPAL
