"""One JSON error shape everywhere, and an OpenAPI document that describes the API."""

from __future__ import annotations

import re

import pytest

SHAPE = {"code", "status", "message"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert isinstance(body["code"], str) and body["code"] == code
    assert isinstance(body["status"], int) and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/schools/not-a-number"])
def test_unknown_url_is_json_404(client, path):
    body = assert_error(client.get(path), 404, "not_found")

    assert set(body) == SHAPE


def test_wrong_method_is_json_405_with_allow_header(client):
    response = client.delete("/api/v1/me")

    body = assert_error(response, 405, "method_not_allowed")
    assert set(body) == SHAPE
    assert "GET" in response.headers["Allow"]
    assert "DELETE" not in response.headers["Allow"]


def test_get_on_login_is_405_allowing_post(client):
    response = client.get("/api/v1/auth/login")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_unexpected_exception_is_json_500_without_details(app, client):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    response = client.get("/boom-for-test")

    body = assert_error(response, 500, "internal_error")
    assert set(body) == SHAPE
    assert "hunter2" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)


def test_unexpected_exception_is_logged(app, client, caplog):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("kaboom")

    client.get("/boom-for-test")

    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)


def test_missing_token_is_json_401(client):
    body = assert_error(client.get("/api/v1/me"), 401, "unauthorized")

    assert set(body) == SHAPE
    assert "Bearer" in body["message"]


def test_unknown_field_is_422_naming_the_field(client):
    response = client.post("/api/v1/auth/login", json={"email": "a@example.org", "password": "x", "admin": True})

    body = assert_error(response, 422, "validation_failed")
    assert set(body) == SHAPE | {"errors"}
    assert body["errors"] == {"admin": ["Unknown field."]}
    assert "admin" in body["message"]


def test_missing_field_is_422_naming_the_field(client):
    response = client.post("/api/v1/auth/login", json={"email": "a@example.org"})

    body = assert_error(response, 422, "validation_failed")
    assert set(body) == SHAPE | {"errors"}
    assert list(body["errors"]) == ["password"]
    assert isinstance(body["errors"]["password"], list)


def test_wrong_type_is_422_naming_the_field(client):
    response = client.post("/api/v1/auth/login", json={"email": 42, "password": "x"})

    body = assert_error(response, 422, "validation_failed")
    assert list(body["errors"]) == ["email"]


@pytest.mark.parametrize("data", ['{"email": ', "not json at all", "{'single': 'quotes'}"])
def test_malformed_json_body_is_422_saying_so(client, data):
    response = client.post("/api/v1/auth/login", data=data, content_type="application/json")

    body = assert_error(response, 422, "validation_failed")
    assert set(body) == SHAPE | {"errors"}
    assert body["errors"] == {"_body": ["The request body is not valid JSON."]}
    assert "not valid JSON" in body["message"]


@pytest.mark.parametrize("data", ["[]", '"a string"', "42"])
def test_json_body_that_is_not_an_object_is_422(client, data):
    response = client.post("/api/v1/auth/login", data=data, content_type="application/json")

    body = assert_error(response, 422, "validation_failed")
    assert set(body) == SHAPE | {"errors"}
    assert body["errors"]


def test_too_large_body_is_json_413(client):
    response = client.post("/api/v1/auth/login", data="x" * (1024 * 1024 + 1), content_type="application/json")

    assert_error(response, 413, "payload_too_large")


def test_openapi_document_describes_the_api(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "emergency"
    for path in ("/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/me", "/api/v1/schools",
                 "/api/v1/schools/{school_id}", "/api/v1/schools/{school_id}/rooms",
                 "/api/v1/schools/{school_id}/people", "/api/v1/schools/{school_id}/partners"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]


def test_openapi_error_schema_is_the_one_error_shape(client):
    spec = client.get("/api/openapi.json").get_json()

    # the shape, plus the optional fields some errors add (a 409's active run, a 429's wait)
    assert set(spec["components"]["schemas"]["Error"]["properties"]) == SHAPE | {
        "errors", "active_run_id", "run_id", "manual_drill_id", "state", "retry_after"}


def test_docs_page_loads_no_script_from_another_origin(client):
    page = client.get("/api/docs").get_data(as_text=True)

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/api/docs/assets/") for source in sources), sources
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.data) > 1000, source


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/nope", "/api/openapi.json"])
def test_api_responses_are_never_cached_or_sniffed(client, path):
    response = client.get(path)

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_answers_with_student_names_are_not_cached(client, make_school, make_person, login):
    school = make_school()
    response = client.get("/api/v1/runs", headers=login(make_person("school_admin", [school])))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_docs_page_is_html(client):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "swagger" in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("path", ["/api/v1/schools/2147483648", "/api/v1/schools/99999999999999999999/rooms"])
def test_id_too_large_for_the_database_is_404_not_500(client, make_person, login, path):
    headers = login(make_person("district_admin"))

    body = assert_error(client.get(path, headers=headers), 404, "not_found")

    assert set(body) == SHAPE


def test_openapi_documents_the_id_bound(client):
    spec = client.get("/api/openapi.json").get_json()

    (param,) = spec["paths"]["/api/v1/schools/{school_id}"]["parameters"]
    assert param["schema"]["type"] == "integer"
    assert param["schema"]["maximum"] == 2**31 - 1
