"""No input is a 500: huge integers, NUL characters, lone surrogates, deep JSON, absurd dates.

Each of these was a 500 once (SQLite OverflowError, PostgreSQL 'integer out of range' or 'cannot
contain NUL', RecursionError). The suite runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORD

HUGE = [2**31, -(2**31) - 1, 2**63, 99999999999999999999999]
DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture
def world(client, make_school, make_room, make_person, login):
    school = make_school(code="PCMS")
    room = make_room(school, number="204")
    teacher = make_person("teacher", [school], home_room_id=room.id)
    admin = make_person("school_admin", [school])
    headers = login(admin)
    run = client.post("/api/v1/runs", json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"},
                      headers=headers).get_json()
    return {"school": school, "room": room, "teacher": teacher, "headers": headers, "run": run}


def assert_422(response, field: str | None = None) -> dict:
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert body["code"] == "validation_failed" and body["status"] == 422 and body["message"]
    if field:
        assert field in body["errors"], body
    return body


# ------------------------------------------------------------------------------------------ integers

@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("query", ["school_id={n}", "page={n}", "per_page={n}"])
def test_a_huge_integer_in_a_query_string_is_422(client, world, number, query):
    response = client.get("/api/v1/runs?" + query.format(n=number), headers=world["headers"])

    assert_422(response, query.split("=")[0])


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_after_seq_is_422(client, world, number):
    response = client.get(f"/api/v1/runs/{world['run']['id']}/timeline?after_seq={number}", headers=world["headers"])

    assert_422(response, "after_seq")


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_integer_in_a_body_is_422(client, world, number):
    start = client.post("/api/v1/runs", json={"school_id": number, "playbook": "secure", "mode": "drill"},
                        headers=world["headers"])
    checkin = client.post(f"/api/v1/runs/{world['run']['id']}/checkins",
                          json={"room_id": number, "status": "all_accounted"}, headers=world["headers"])

    assert_422(start, "school_id")
    assert_422(checkin, "room_id")


@pytest.mark.parametrize("number", HUGE)
def test_a_huge_integer_for_the_roster_and_the_checklist_is_422(client, world, number):
    run_id = world["run"]["id"]
    room = client.post(f"/api/v1/runs/{run_id}/roster/checkins", json={"room_id": number}, headers=world["headers"])
    exceptions = [{"student_id": number, "status": "absent"}]
    student = client.post(f"/api/v1/runs/{run_id}/roster/checkins",
                          json={"room_id": world["room"].id, "exceptions": exceptions}, headers=world["headers"])
    reads = client.get(f"/api/v1/privacy/student-data-reads?school_id={number}", headers=world["headers"])
    step = client.post(f"/api/v1/runs/{run_id}/checklist", json={"step": number}, headers=world["headers"])

    assert_422(room, "room_id")
    assert_422(student, "exceptions.0.student_id")
    assert_422(reads, "school_id")
    assert_422(step, "step")


@pytest.mark.parametrize("path", ["/api/v1/runs/{n}", "/api/v1/schools/{n}", "/api/v1/runs/{n}/timeline",
                                  "/api/v1/runs/{n}/roster", "/api/v1/runs/{n}/roster/students",
                                  "/api/v1/runs/{n}/checklist", "/api/v1/runs/{n}/open-items",
                                  "/api/v1/runs/{n}/alerts"])
def test_a_huge_id_in_a_path_is_404(client, world, path):
    for number in (2**31, 2**63, 99999999999999999999999):
        response = client.get(path.format(n=number), headers=world["headers"])
        assert response.status_code == 404 and response.get_json()["code"] == "not_found"


def test_the_largest_32_bit_id_is_an_ordinary_404(client, world):
    assert client.get(f"/api/v1/runs/{2**31 - 1}", headers=world["headers"]).status_code == 404
    response = client.get(f"/api/v1/runs?school_id={2**31 - 1}", headers=world["headers"])
    assert response.status_code == 200 and response.get_json()["runs"] == []


# ------------------------------------------------------------------------------------------ strings

@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "ok \udfff"])
def test_nul_and_lone_surrogates_in_a_login_email_are_422_without_logging_in(client, text):
    response = client.post("/api/v1/auth/login", json={"email": text + "@example.org", "password": PASSWORD})

    assert_422(response, "email")


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_nul_and_lone_surrogates_in_notes_and_messages_are_422(client, world, text):
    run_id = world["run"]["id"]
    update = client.post(f"/api/v1/runs/{run_id}/updates", json={"message": text}, headers=world["headers"])
    checkin = client.post(f"/api/v1/runs/{run_id}/checkins",
                          json={"room_id": world["room"].id, "status": "all_accounted", "note": text},
                          headers=world["headers"])

    assert_422(update, "message")
    assert_422(checkin, "note")


def test_a_lone_surrogate_escaped_in_raw_json_is_422(client, world):
    raw = '{"message": "\\ud800 police on site"}'
    response = client.post(f"/api/v1/runs/{world['run']['id']}/updates", data=raw,
                           content_type="application/json", headers=world["headers"])

    assert_422(response, "message")


def test_a_nul_in_a_query_string_is_422(client, world):
    assert_422(client.get("/api/v1/runs?state=act%00ive", headers=world["headers"]), "state")


def test_a_nul_in_the_idempotency_key_is_422(client, world):
    headers = {**world["headers"], "Idempotency-Key": "abc\x00def"}
    response = client.post("/api/v1/runs", json={"school_id": world["school"].id, "playbook": "secure",
                                                 "mode": "drill"}, headers=headers)

    assert_422(response, "Idempotency-Key")


# ------------------------------------------------------------------------------------------ JSON nesting

@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/auth/login"])
def test_json_nested_a_thousand_deep_is_a_4xx(client, world, path):
    response = client.post(path, data=DEEP, content_type="application/json", headers=world["headers"])

    assert response.status_code in (400, 422)
    assert response.get_json()["status"] == response.status_code


def test_json_nested_just_past_the_limit_is_refused_and_within_it_is_read(client, world):
    def facts(depth: int) -> str:
        return json.dumps({"school_id": world["school"].id, "playbook": "secure", "mode": "drill",
                           "facts": json.loads("[" * (depth - 1) + "]" * (depth - 1))})

    too_deep = client.post("/api/v1/runs", data=facts(33), content_type="application/json",
                           headers=world["headers"])
    assert_422(too_deep, "_body")
    assert "nested more than 32 levels" in too_deep.get_json()["message"]
    within = client.post("/api/v1/runs", data=facts(32), content_type="application/json", headers=world["headers"])
    assert within.status_code == 422 and "_body" not in within.get_json()["errors"]  # facts must be an object


# ------------------------------------------------------------------------------------------ dates

@pytest.mark.parametrize("held_at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_an_absurd_drill_date_is_422(client, world, held_at):
    response = client.post("/api/v1/drills", json={"school_id": world["school"].id, "category": "lockdown",
                                                   "held_at": held_at}, headers=world["headers"])

    assert_422(response, "held_at")


def test_an_absurd_date_in_a_run_filter_is_422(client, world):
    response = client.get("/api/v1/runs?start=0001-01-01T00:00:00%2B05:00", headers=world["headers"])

    assert_422(response, "start")


# ------------------------------------------------------------------------------------------ order and types

@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/v1/runs", {"school_id": "x"}),
    ("post", "/api/v1/runs/1/checkins", {"room_id": 2**70}),
    ("get", "/api/v1/runs?page=0", None),
    ("post", "/api/v1/drills", {"held_at": "0001-01-01T00:00:00Z"}),
])
def test_an_anonymous_request_is_401_before_its_body_is_judged(client, method, path, body):
    response = getattr(client, method)(path, json=body)

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
def test_only_true_and_false_are_booleans(client, world, value):
    response = client.post("/api/v1/drills", json={"school_id": world["school"].id, "category": "lockdown",
                                                   "held_at": "2026-10-01T10:00:00-04:00", "summer": value},
                           headers=world["headers"])
    start = client.post("/api/v1/runs", json={"school_id": world["school"].id, "playbook": "secure",
                                              "mode": "real", "confirm": value}, headers=world["headers"])

    assert_422(response, "summer")
    assert_422(start, "confirm")


@pytest.mark.parametrize("value", [0, 1, "true"])
def test_the_newer_booleans_take_only_true_and_false(client, world, value):
    run_id = world["run"]["id"]
    empty = client.post(f"/api/v1/runs/{run_id}/checkins", json={"room_id": world["room"].id, "status": "all_accounted",
                                                                 "room_empty": value}, headers=world["headers"])
    help_ = client.post(f"/api/v1/runs/{run_id}/roster/checkins", json={"room_id": world["room"].id,
                                                                        "need_help": value}, headers=world["headers"])
    tick = client.post(f"/api/v1/runs/{run_id}/checklist", json={"step": 0, "done": value}, headers=world["headers"])

    assert_422(empty, "room_empty")
    assert_422(help_, "need_help")
    assert_422(tick, "done")


def test_options_on_playbooks_reload_advertises_only_post(client, world):
    options = client.options("/api/v1/playbooks/reload")
    get = client.get("/api/v1/playbooks/reload", headers=world["headers"])

    assert "GET" not in options.headers["Allow"] and "POST" in options.headers["Allow"]
    assert get.status_code == 405 and get.get_json()["code"] == "method_not_allowed"
    assert client.get("/api/v1/playbooks/lockdown", headers=world["headers"]).status_code == 200


# --------------------------------------------------------------------------------------- the parser
def test_the_parser_builds_each_argument_schema_once_and_it_still_validates(world, client):
    """A schema instance per request cost a third of a millisecond of every check-in; one per class serves all."""
    from emergency.accountability.schemas import CheckinSchema
    from emergency.web import GuardedParser

    parser = GuardedParser()
    assert parser._get_schema(CheckinSchema, None) is parser._get_schema(CheckinSchema, None)
    url = f"/api/v1/runs/{world['run']['id']}/checkins"

    def report(present: int):
        return client.post(url, json={"status": "all_accounted", "present": present, "room_id": world["room"].id},
                           headers=world["headers"])

    good = report(20)
    assert good.status_code == 201, good.get_data(as_text=True)
    assert_422(report(-1), "present")
    again = report(21)
    assert again.status_code == 201 and again.get_json()["present"] == 21
