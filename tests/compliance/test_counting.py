"""Which drills count for compliance, checked against hand-worked examples through the API.

Runs are written straight into the database with the dates a school year needs; the clock the
service reads ("today") is fixed, so every status is deterministic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from emergency.compliance import service
from emergency.errors import ValidationFailed
from emergency.playbooks.drill_facts import validate_facts
from emergency.runs.models import Run

NEW_YORK = ZoneInfo("America/New_York")
PLAYBOOK_OF = {"evacuation": "evacuate", "lockdown": "lockdown", "early_dismissal": "early_dismissal",
               "shelter": "shelter", "secure": "secure"}


def local(text: str) -> datetime:
    """A New York wall-clock time ("2026-10-01 10:00") as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    """Logins hash with argon2's cheapest settings: the default costs half a second per login."""
    from argon2 import PasswordHasher

    from emergency.accounts import service as accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def today(monkeypatch):
    """Fix the service's clock: today("2027-01-05") makes that date (noon, New York) 'now'."""

    def set_today(day: str) -> None:
        now = local(f"{day} 12:00").astimezone(UTC)
        monkeypatch.setattr(service, "utcnow", lambda: now)

    return set_today


@pytest.fixture
def make_drill(app, session):
    """Write a run as if it had been started and ended through the API."""
    registry = app.extensions["playbooks"]

    def make(school, at: str, category: str = "evacuation", *, state: str = "ended", mode: str = "drill",
             facts: dict | None = None, minutes: int = 8) -> Run:
        playbook = registry.get(PLAYBOOK_OF[category])
        started = local(at).astimezone(UTC)
        run = Run(school_id=school.id, school=school, playbook_key=playbook.key, playbook_version=playbook.version,
                  playbook=playbook.to_dict(), mode=mode, action=playbook.action, directive=playbook.directive,
                  state=state, end_reason={"ended": "all_clear", "cancelled": "cancelled",
                                           "superseded": "superseded"}.get(state),
                  started_by={"kind": "person", "id": 0, "name": "Principal Rivera", "role": "school_admin"},
                  started_at=started, ended_at=None if state == "active" else started + timedelta(minutes=minutes),
                  last_seq=0, facts=facts or {})
        session.add(run)
        session.commit()
        return run

    return make


@pytest.fixture
def admin(make_person, login):
    """A district admin's Authorization header."""
    return login(make_person("district_admin"))


def report(client, headers, school, year=2026, **params) -> dict:
    response = client.get("/api/v1/compliance", headers=headers,
                          query_string={"school_id": school.id, "year": year, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rule(body: dict, rule_id: str) -> dict:
    return next(r for r in body["rules"] if r["rule"] == rule_id)


def test_seven_drills_by_december_31_is_behind(client, admin, make_school, make_drill, today):
    school = make_school()
    for day in ("09-08", "09-22", "10-06", "10-20", "11-03", "11-17", "12-01"):
        make_drill(school, f"2026-{day} 10:00")
    today("2027-01-05")

    body = report(client, admin, school)

    december = rule(body, "by_december_31")
    assert (december["done"], december["remaining"], december["status"]) == (7, 1, "behind")
    assert december["next_deadline"] == "2026-12-31"
    assert december["detail"] == "7 of 8 drills by 2026-12-31; deadline passed with 1 missing"
    assert body["summary"]["status"] == "behind"
    assert "by_december_31" in body["summary"]["behind"]


def test_seven_drills_on_december_1_is_on_track_for_december_31(client, admin, make_school, make_drill, today):
    school = make_school()
    for day in ("09-08", "09-22", "10-06", "10-20", "11-03", "11-17", "11-24"):
        make_drill(school, f"2026-{day} 10:00")
    today("2026-12-01")

    december = rule(report(client, admin, school), "by_december_31")

    assert (december["done"], december["status"]) == (7, "on_track")
    assert december["detail"] == "7 of 8 drills by 2026-12-31; 1 more needed in 30 days"


def test_twelve_drills_with_only_three_lockdowns_is_not_met(client, admin, make_school, make_drill, today):
    school = make_school()
    for month in (9, 10, 11):
        make_drill(school, f"2026-{month:02d}-15 13:30", "lockdown")
    for n, month in enumerate((9, 9, 10, 10, 11, 11, 12, 12, 3)):
        year = 2027 if month < 7 else 2026
        make_drill(school, f"{year}-{month:02d}-{2 + n:02d} 09:15", facts={"secondary_exit": n < 4})
    today("2027-06-30")
    last_day = rule(report(client, admin, school), "lockdown")
    today("2027-07-01")

    body = report(client, admin, school)

    assert (rule(body, "total")["done"], rule(body, "total")["status"]) == (12, "met")
    assert rule(body, "evacuation")["status"] == "met"
    assert rule(body, "evacuation_secondary")["status"] == "met"
    lockdown = rule(body, "lockdown")
    assert (lockdown["required"], lockdown["done"], lockdown["remaining"], lockdown["status"]) == (4, 3, 1, "behind")
    assert lockdown["detail"] == "3 of 4 lockdown drills by 2027-06-30; deadline passed with 1 missing"
    assert "lockdown" in body["summary"]["behind"]
    assert body["drills"] == {"total": 12, "manual": 0}
    # On the last day one more lockdown can still be held: not met, but not yet behind.
    assert (last_day["status"], last_day["detail"]) == (
        "on_track", "3 of 4 lockdown drills by 2027-06-30; 1 more needed today")


def test_school_year_runs_july_1_to_june_30_in_local_time(client, admin, make_school, make_drill, today):
    school = make_school()
    make_drill(school, "2026-06-30 10:00")  # the previous school year
    make_drill(school, "2026-07-01 00:30")  # first day: 04:30 UTC
    make_drill(school, "2027-06-30 23:30")  # last day, local time, although 03:30 UTC on July 1
    make_drill(school, "2027-07-01 00:30")  # the next school year
    today("2027-06-30")

    body = report(client, admin, school)

    assert body["school_year"] == {"start": "2026-07-01", "end": "2027-06-30"}
    assert rule(body, "total")["done"] == 2
    assert rule(report(client, admin, school, year=2025), "total")["done"] == 1
    assert rule(report(client, admin, school, year=2027), "total")["done"] == 1


def test_cancelled_superseded_active_and_real_runs_do_not_count(client, admin, make_school, make_drill, today):
    school = make_school()
    make_drill(school, "2026-09-10 10:00")
    make_drill(school, "2026-09-11 10:00", state="cancelled")
    make_drill(school, "2026-09-12 10:00", state="superseded")
    make_drill(school, "2026-09-14 10:00", mode="real")
    make_drill(school, "2026-09-15 10:00", state="active")
    today("2026-09-20")

    body = report(client, admin, school)
    log = client.get("/api/v1/drills", headers=admin, query_string={"school_id": school.id, "year": 2026})

    assert rule(body, "total")["done"] == 1
    assert [d["date"] for d in log.get_json()["drills"]] == ["2026-09-10"]


def test_a_drill_counts_under_its_playbook_snapshots_category(client, admin, session, make_school, make_drill,
                                                              today):
    school = make_school()
    make_drill(school, "2026-09-10 10:00", "lockdown")
    uncounted = make_drill(school, "2026-09-11 10:00")
    uncounted.playbook = {**uncounted.playbook, "compliance_category": None}
    session.commit()
    today("2026-09-20")

    body = report(client, admin, school)

    assert rule(body, "lockdown")["done"] == 1
    assert rule(body, "total")["done"] == 1


def test_time_of_day_is_local_time_at_the_school(client, admin, session, make_school, make_drill, today):
    school = make_school(timezone="America/Los_Angeles")
    pacific = ZoneInfo("America/Los_Angeles")
    for wall in ("2026-09-10 10:59", "2026-09-11 11:00", "2026-09-12 13:00"):
        run = make_drill(school, "2026-09-10 00:00")
        run.started_at = datetime.fromisoformat(wall).replace(tzinfo=pacific).astimezone(UTC)
        run.ended_at = run.started_at + timedelta(minutes=8)
    session.commit()
    today("2026-09-20")

    times = rule(report(client, admin, school), "times_of_day")

    assert times["done"] == 3
    assert "(morning, midday, afternoon)" in times["detail"]


def test_early_dismissal_uses_the_schools_dismissal_time(client, admin, make_school, make_drill, today):
    school = make_school(dismissal_time="15:00")
    make_drill(school, "2027-05-12 14:45", "early_dismissal", facts={"parents_notified_on": "2027-05-05"})
    make_drill(school, "2027-05-19 14:40", "early_dismissal", facts={"parents_notified_on": "2027-05-18"})
    today("2027-05-20")

    early = rule(report(client, admin, school), "early_dismissal")

    assert (early["done"], early["status"]) == (1, "met")
    assert "2027-05-19 (20 min before dismissal, at most 15 allowed, 1 days' notice, 7 needed)" in early["detail"]


def test_summer_drills_count_only_with_a_summer_session(client, admin, make_school, make_drill, today):
    school = make_school()
    make_drill(school, "2026-07-06 10:00", facts={"summer": True})
    make_drill(school, "2026-07-20 10:00", facts={"summer": True})
    today("2026-08-01")

    without = report(client, admin, school)
    with_session = report(client, admin, school, summer_session_start="2026-07-06")

    assert rule(without, "summer")["status"] == "not_applicable"
    assert rule(without, "total")["done"] == 0  # summer drills are in addition to the year's
    assert (rule(with_session, "summer")["done"], rule(with_session, "summer")["status"]) == (2, "met")
    assert rule(with_session, "summer_first_week")["status"] == "met"


def test_manual_drills_count_and_are_marked(client, admin, make_school, make_drill, today):
    school = make_school()
    make_drill(school, "2026-09-10 10:00")
    today("2026-09-30")
    created = client.post("/api/v1/drills", headers=admin, json={
        "school_id": school.id, "category": "lockdown", "held_at": "2026-09-17T13:05:00-04:00",
        "duration_seconds": 600, "note": "Paper record from the substitute principal"})

    body = report(client, admin, school)
    log = client.get("/api/v1/drills", headers=admin, query_string={"school_id": school.id}).get_json()

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["manual"] is True
    assert rule(body, "total")["done"] == 2
    assert rule(body, "lockdown")["detail"].startswith("1 of 4 lockdown drills by 2027-06-30 (1 entered by hand)")
    assert body["drills"] == {"total": 2, "manual": 1}
    assert [(d["source"], d["manual"], d["category"], d["time"]) for d in log["drills"]] == [
        ("system", False, "evacuation", "10:00"), ("manual", True, "lockdown", "13:05")]
    manual = log["drills"][1]
    assert manual["recorded_by"]["role"] == "district_admin"
    assert manual["recorded_at"] and manual["note"] == "Paper record from the substitute principal"
    assert manual["duration_seconds"] == 600


def test_secondary_exit_recorded_after_the_all_clear_counts(client, admin, make_school, make_drill, today):
    school = make_school()
    run = make_drill(school, "2026-09-10 10:00")
    today("2026-09-20")

    response = client.post(f"/api/v1/runs/{run.id}/facts", headers=admin, json={"secondary_exit": True})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["facts"] == {"secondary_exit": True}
    assert rule(report(client, admin, school), "evacuation_secondary")["done"] == 1
    events = client.get(f"/api/v1/runs/{run.id}/timeline", headers=admin).get_json()["events"]
    assert events[-1]["type"] == "run.facts_recorded"


def test_facts_can_be_cleared_with_null(client, admin, make_school, make_drill):
    run = make_drill(make_school(), "2026-09-10 10:00", facts={"secondary_exit": True})

    response = client.post(f"/api/v1/runs/{run.id}/facts", headers=admin, json={"secondary_exit": None})

    assert response.get_json()["facts"] == {}


@pytest.mark.parametrize("state, mode", [("cancelled", "drill"), ("superseded", "drill"), ("ended", "real")])
def test_facts_are_refused_on_runs_that_do_not_count(client, admin, make_school, make_drill, state, mode):
    run = make_drill(make_school(), "2026-09-10 10:00", state=state, mode=mode)

    response = client.post(f"/api/v1/runs/{run.id}/facts", headers=admin, json={"secondary_exit": True})

    assert response.status_code == 409


def test_facts_the_playbook_does_not_record_are_refused(client, admin, make_school, make_drill):
    run = make_drill(make_school(), "2026-09-10 10:00", "lockdown")

    response = client.post(f"/api/v1/runs/{run.id}/facts", headers=admin, json={"secondary_exit": True})

    assert response.status_code == 422
    assert "secondary_exit" in response.get_json()["errors"]
    assert "Lockdown playbook does not record" in response.get_json()["message"]


def test_facts_are_admin_only(client, login, make_person, make_school, make_drill):
    school = make_school()
    run = make_drill(school, "2026-09-10 10:00", state="active")
    teacher = login(make_person("teacher", [school]))
    school_admin = login(make_person("school_admin", [school]))

    assert client.post(f"/api/v1/runs/{run.id}/facts", headers=teacher, json={"summer": True}).status_code == 403
    assert client.post(f"/api/v1/runs/{run.id}/facts", headers=school_admin,
                       json={"summer": True}).status_code == 200


class TestValidateFacts:
    @pytest.fixture
    def evacuate(self, app):
        return app.extensions["playbooks"].get("evacuate")

    @pytest.fixture
    def early_dismissal(self, app):
        return app.extensions["playbooks"].get("early_dismissal")

    def test_clean_facts_come_back_normalised(self, evacuate, early_dismissal):
        assert validate_facts(evacuate, {"secondary_exit": True, "summer": False}) == {
            "secondary_exit": True, "summer": False}
        assert validate_facts(early_dismissal, {"parents_notified_on": date(2027, 5, 5),
                                                        "dismissal_time": "12:30"}) == {
            "parents_notified_on": "2027-05-05", "dismissal_time": "12:30"}
        assert validate_facts(evacuate, None) == {}

    @pytest.mark.parametrize("facts, field", [
        ({"secondary_exit": "yes"}, "facts.secondary_exit"),
        ({"parents_notified_on": "last week"}, "facts.parents_notified_on"),
        ({"colour": "red"}, "facts.colour"),
        ({"variant": "tornado"}, "facts.variant"),
    ])
    def test_bad_facts_are_named(self, evacuate, early_dismissal, facts, field):
        playbook = early_dismissal if "parents_notified_on" in facts else evacuate
        with pytest.raises(ValidationFailed) as caught:
            validate_facts(playbook, facts)
        assert list(caught.value.errors) == [field]

    def test_every_problem_is_reported_at_once(self, early_dismissal):
        with pytest.raises(ValidationFailed) as caught:
            validate_facts(early_dismissal, {"secondary_exit": True, "dismissal_time": "3pm",
                                                     "parents_notified_on": "2027-02-30"})
        assert set(caught.value.errors) == {"facts.secondary_exit", "facts.dismissal_time",
                                            "facts.parents_notified_on"}
