"""Who may see compliance and the drill log, hand-entered drills, and a rules file that will not load."""

from __future__ import annotations

import logging

import pytest

from emergency.app import create_app
from tests.compliance import test_counting

# Shared fixtures: a district admin's headers, runs written straight to the database, a fixed today.
admin, make_drill, today = test_counting.admin, test_counting.make_drill, test_counting.today
cheap_passwords = test_counting.cheap_passwords

ENDPOINTS = ("/api/v1/compliance", "/api/v1/drills", "/api/v1/reports/trends")


@pytest.fixture
def schools(make_school):
    return make_school(code="LIN", name="Lincoln Elementary"), make_school(code="WAS", name="Washington Middle")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("role", ["teacher", "staff", "nurse"])
def test_staff_who_are_not_admins_get_403(client, login, make_person, schools, path, role):
    headers = login(make_person(role, [schools[0]]))

    assert client.get(path, headers=headers).status_code == 403
    assert client.get(path, headers=headers, query_string={"school_id": schools[0].id}).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_partners_get_403(client, login, make_partner, schools, path):
    headers = login(make_partner([schools[0]]))

    assert client.get(path, headers=headers, query_string={"school_id": schools[0].id}).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_token_is_401(client, path):
    assert client.get(path).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_school_admins_see_their_school_only(client, login, make_person, schools, path):
    lincoln, washington = schools
    headers = login(make_person("school_admin", [lincoln]))

    assert client.get(path, headers=headers, query_string={"school_id": lincoln.id}).status_code == 200
    assert client.get(path, headers=headers, query_string={"school_id": washington.id}).status_code == 404


def test_district_summary_lists_each_school_in_scope(client, login, make_person, schools, make_drill, today):
    lincoln, washington = schools
    for day in ("09-08", "09-22", "10-06", "10-20", "11-03", "11-17", "12-01", "12-15"):
        make_drill(lincoln, f"2026-{day} 10:00")
    today("2027-01-05")

    district = client.get("/api/v1/compliance", headers=login(make_person("district_admin")),
                          query_string={"year": 2026}).get_json()
    own = client.get("/api/v1/compliance", headers=login(make_person("school_admin", [washington]))).get_json()

    assert [row["school"]["code"] for row in district["schools"]] == ["LIN", "WAS"]
    lin, was = district["schools"]
    assert lin["status"] == "behind" and "by_december_31" not in [r["rule"] for r in lin["behind"]]
    assert [r["rule"] for r in was["behind"]][:2] == ["total", "by_december_31"]
    assert was["behind"][1]["detail"] == "0 of 8 drills by 2026-12-31; deadline passed with 8 missing"
    assert district["totals"]["behind"] == 2
    assert district["rules_file"]["name"] == "New York State"
    assert [row["school"]["code"] for row in own["schools"]] == ["WAS"]


def test_year_defaults_to_the_current_school_year(client, admin, schools, today):
    today("2027-03-01")
    march = client.get("/api/v1/compliance", headers=admin, query_string={"school_id": schools[0].id}).get_json()
    today("2027-07-01")
    july = client.get("/api/v1/drills", headers=admin).get_json()

    assert (march["year"], march["today"]) == (2026, "2027-03-01")
    assert july["year"] == 2027
    assert july["school_year"] == {"start": "2027-07-01", "end": "2028-06-30"}


def test_every_rule_has_the_documented_fields(client, admin, schools, today):
    today("2026-10-01")

    body = client.get("/api/v1/compliance", headers=admin, query_string={"school_id": schools[0].id}).get_json()

    assert [r["rule"] for r in body["rules"]] == ["total", "by_december_31", "evacuation", "evacuation_secondary",
                                                  "lockdown", "times_of_day", "summer", "summer_first_week",
                                                  "early_dismissal"]
    assert set(body["rules"][0]) == {"rule", "description", "required", "done", "remaining", "status",
                                     "next_deadline", "detail"}
    assert body["summary"]["counts"]["not_applicable"] == 2


# --- hand-entered drills ---------------------------------------------------------------------

def manual(school, **overrides) -> dict:
    return {"school_id": school.id, "category": "evacuation", "held_at": "2026-10-01T10:00:00-04:00",
            **overrides}


def test_school_admins_record_drills_for_their_own_school(client, login, make_person, schools):
    lincoln, washington = schools
    headers = login(make_person("school_admin", [lincoln]))

    assert client.post("/api/v1/drills", headers=headers, json=manual(lincoln)).status_code == 201
    assert client.post("/api/v1/drills", headers=headers, json=manual(washington)).status_code == 404


@pytest.mark.parametrize("role", ["teacher", "staff", "security"])
def test_other_staff_cannot_record_drills(client, login, make_person, schools, role):
    headers = login(make_person(role, [schools[0]]))

    assert client.post("/api/v1/drills", headers=headers, json=manual(schools[0])).status_code == 403


def test_partners_cannot_record_drills(client, login, make_partner, schools):
    assert client.post("/api/v1/drills", headers=login(make_partner([schools[0]])),
                       json=manual(schools[0])).status_code == 403


@pytest.mark.parametrize("overrides, field", [
    ({"category": "fire"}, "category"),
    ({"held_at": "2026-10-01T10:00:00"}, "held_at"),
    ({"held_at": "2999-10-01T10:00:00-04:00"}, "held_at"),
    ({"duration_seconds": -1}, "duration_seconds"),
    ({"secondary_exit": "yes"}, "secondary_exit"),
    ({"parents_notified_on": "soon"}, "parents_notified_on"),
    ({"colour": "red"}, "colour"),
])
def test_bad_manual_drills_are_422_naming_the_field(client, admin, schools, overrides, field):
    response = client.post("/api/v1/drills", headers=admin, json=manual(schools[0], **overrides))

    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_a_drill_already_recorded_is_not_entered_twice(client, admin, schools, make_drill):
    run = make_drill(schools[0], "2026-10-01 10:05")

    twice = client.post("/api/v1/drills", headers=admin, json=manual(schools[0]))
    other_kind = client.post("/api/v1/drills", headers=admin, json=manual(schools[0], category="lockdown"))
    later = client.post("/api/v1/drills", headers=admin, json=manual(schools[0], held_at="2026-10-01T13:30:00-04:00"))

    assert twice.status_code == 409
    assert twice.get_json()["run_id"] == run.id
    assert (other_kind.status_code, later.status_code) == (201, 201)
    assert client.post("/api/v1/drills", headers=admin,
                       json=manual(schools[0], held_at="2026-10-01T13:45:00-04:00")).status_code == 409


def test_the_drill_log_without_a_school_covers_the_callers_schools(client, login, make_person, schools,
                                                                     make_drill, today):
    lincoln, washington = schools
    make_drill(lincoln, "2026-09-10 10:00")
    make_drill(washington, "2026-09-09 11:00", "lockdown")
    today("2026-09-30")

    district = client.get("/api/v1/drills", headers=login(make_person("district_admin"))).get_json()
    own = client.get("/api/v1/drills", headers=login(make_person("school_admin", [lincoln]))).get_json()

    assert [(d["school"]["code"], d["date"]) for d in district["drills"]] == [("WAS", "2026-09-09"),
                                                                            ("LIN", "2026-09-10")]
    assert [d["school"]["code"] for d in own["drills"]] == ["LIN"]
    assert district["drills"][0]["playbook"] == "Lockdown"
    assert district["drills"][0]["duration_seconds"] == 480


# --- the rules file --------------------------------------------------------------------------

def test_rules_are_loaded_when_the_app_starts(app):
    assert app.extensions["compliance_rules"].name == "New York State"
    assert app.extensions["compliance_rules_problems"] == []


def test_a_bad_rules_file_is_logged_and_compliance_answers_503(make_config, tmp_path, login, make_person,
                                                                caplog):
    bad = tmp_path / "rules.yaml"
    bad.write_text('name: Somewhere\nschool_year_start: "13-01"\nrules:\n  - id: total\n    kind: tally\n')

    headers = login(make_person("district_admin"))
    with caplog.at_level(logging.ERROR, logger="emergency.compliance"):
        broken = create_app(make_config(COMPLIANCE_RULES=str(bad)))
    with broken.app_context():
        client = broken.test_client()
        responses = [client.get(path, headers=headers) for path in ENDPOINTS]
        health = client.get("/healthz")
    broken.extensions["db"]["engine"].dispose()

    problems = [r.getMessage() for r in caplog.records if "compliance rules problem" in r.getMessage()]
    assert len(problems) >= 3
    assert any(f"{bad}:2:20: school_year_start" in p for p in problems)
    for response in responses:
        assert response.status_code == 503
        body = response.get_json()
        assert body["code"] == "service_unavailable"
        assert str(bad) in body["message"] and "emergency compliance check" in body["message"]
    assert health.status_code == 200


def test_a_missing_rules_file_is_503_too(make_config, tmp_path, login, make_person):
    headers = login(make_person("district_admin"))
    broken = create_app(make_config(COMPLIANCE_RULES=str(tmp_path / "nowhere.yaml")))
    with broken.app_context():
        response = broken.test_client().get("/api/v1/compliance", headers=headers)
    broken.extensions["db"]["engine"].dispose()

    assert response.status_code == 503
