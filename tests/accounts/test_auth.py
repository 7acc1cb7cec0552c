"""Logging in and out, bearer tokens, the login throttle, and how secrets are stored."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from emergency.accounts import service
from emergency.accounts.models import Account, AuthToken
from emergency.accounts.service import BAD_LOGIN, set_password
from emergency.accounts.throttle import DEVICE_COOKIE
from emergency.directory.models import Partner, Person
from emergency.errors import NotFound, ValidationFailed
from emergency.timeutil import utcnow
from tests.conftest import PASSWORD

LOGIN = "/api/v1/auth/login"
PRODUCTION_HASHER = service._hasher
GUESSER = {"REMOTE_ADDR": "203.0.113.66"}
BALANCER = {"REMOTE_ADDR": "10.0.0.2"}

def log_in(client, email, password=PASSWORD):
    return client.post(LOGIN, json={"email": email, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def teacher(make_school, make_person, session):
    school = make_school(code="PCHS", name="Port Chester High")
    person = make_person("teacher", schools=[school], name="Ana Teacher")
    set_password(session, person.email, PASSWORD)
    session.commit()
    return person


def test_login_returns_token_expiry_and_user(client, teacher):
    response = log_in(client, teacher.email)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "expires_at", "user"}
    assert len(body["token"]) >= 32
    assert body["expires_at"]
    assert body["user"]["email"] == teacher.email
    assert body["user"]["role"] == "teacher"
    assert [s["code"] for s in body["user"]["schools"]] == ["PCHS"]


def test_login_ignores_email_case_and_spaces(client, teacher):
    assert log_in(client, f"  {teacher.email.upper()} ").status_code == 200


def test_token_expires_after_the_configured_hours(client, teacher, app, session):
    token = log_in(client, teacher.email).get_json()["token"]

    row = session.scalar(select(AuthToken))
    assert row.expires_at - row.created_at == timedelta(hours=app.config["TOKEN_TTL_HOURS"])
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_wrong_password_and_unknown_email_give_the_same_401(client, teacher):
    wrong_password = log_in(client, teacher.email, "not the password")
    unknown_email = log_in(client, "nobody@example.org")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.get_json() == unknown_email.get_json()
    assert wrong_password.get_json()["message"] == BAD_LOGIN


def test_person_without_account_gets_the_same_401(client, make_person):
    person = make_person("teacher")

    response = log_in(client, person.email)

    assert response.status_code == 401
    assert response.get_json()["message"] == BAD_LOGIN


def test_token_works_for_me(client, teacher):
    token = log_in(client, teacher.email).get_json()["token"]

    response = client.get("/api/v1/me", headers=bearer(token))

    assert response.status_code == 200
    me = response.get_json()
    assert me["kind"] == "person"
    assert me["id"] == teacher.id
    assert me["name"] == "Ana Teacher"
    assert me["role"] == "teacher"
    assert [s["code"] for s in me["schools"]] == ["PCHS"]


def test_login_and_me_give_a_teachers_home_room(client, make_school, make_room, make_person, session):
    school = make_school()
    room = make_room(school, number="204")
    person = make_person("teacher", schools=[school], home_room_id=room.id)
    set_password(session, person.email, PASSWORD)
    session.commit()

    body = log_in(client, person.email).get_json()
    me = client.get("/api/v1/me", headers=bearer(body["token"])).get_json()

    assert body["user"]["home_room_id"] == me["home_room_id"] == room.id


def test_me_for_a_partner_lists_covered_schools(client, make_school, make_partner, login):
    covered = make_school(code="A1")
    make_school(code="B2")
    partner = make_partner(schools=[covered])

    me = client.get("/api/v1/me", headers=login(partner)).get_json()

    assert me["kind"] == "partner"
    assert me["role"] == "partner"
    assert me["home_room_id"] is None
    assert [s["code"] for s in me["schools"]] == ["A1"]


def test_me_for_a_district_admin_lists_every_school(client, make_school, make_person, login):
    make_school(code="A1")
    make_school(code="B2")
    admin = make_person("district_admin")

    me = client.get("/api/v1/me", headers=login(admin)).get_json()

    assert [s["code"] for s in me["schools"]] == ["A1", "B2"]


def test_logout_revokes_the_token(client, teacher):
    token = log_in(client, teacher.email).get_json()["token"]

    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204

    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_logout_leaves_other_tokens_working(client, teacher):
    first = log_in(client, teacher.email).get_json()["token"]
    second = log_in(client, teacher.email).get_json()["token"]

    client.post("/api/v1/auth/logout", headers=bearer(first))

    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 200


def test_logout_without_a_token_is_401(client):
    assert client.post("/api/v1/auth/logout").status_code == 401


def test_expired_token_is_401_saying_expired(client, teacher, session):
    token = log_in(client, teacher.email).get_json()["token"]
    row = session.scalar(select(AuthToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()

    response = client.get("/api/v1/me", headers=bearer(token))

    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


@pytest.mark.parametrize("header", [
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "Bearer not-a-real-token",
    "Bearer a b c",
    "bearer\tsomething",
])
def test_missing_or_malformed_authorization_header_is_401(client, teacher, header):
    log_in(client, teacher.email)  # a valid token exists; none of these headers carries it

    response = client.get("/api/v1/me", headers={"Authorization": header} if header else {})

    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == "unauthorized"
    assert body["status"] == 401


def test_bearer_scheme_is_case_insensitive(client, teacher):
    token = log_in(client, teacher.email).get_json()["token"]

    assert client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_five_failed_logins_for_an_email_then_429_with_retry_after(client, teacher):
    for _ in range(5):
        assert log_in(client, teacher.email, "wrong password").status_code == 401

    response = log_in(client, teacher.email, "wrong password")

    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == "too_many_requests"
    assert "try again in" in body["message"]
    assert 0 < body["retry_after"] <= 61
    assert response.headers["Retry-After"] == str(body["retry_after"])


def test_correct_password_from_the_guessing_address_is_slowed_too(client, teacher):
    for _ in range(5):
        log_in(client, teacher.email, "wrong password")

    response = log_in(client, teacher.email)

    assert response.status_code == 429
    assert "token" not in response.get_json()


def test_correct_password_from_another_address_still_works(client, teacher):
    for _ in range(20):
        client.post(LOGIN, json={"email": teacher.email, "password": "guess"}, environ_base=GUESSER)

    assert log_in(client, teacher.email).status_code == 200


def test_correct_password_from_a_known_device_works_behind_the_same_address(app, teacher):
    phone, script = app.test_client(), app.test_client()
    assert phone.post(LOGIN, json={"email": teacher.email, "password": PASSWORD}).status_code == 200
    for _ in range(20):
        script.post(LOGIN, json={"email": teacher.email, "password": "guess"})
    assert script.post(LOGIN, json={"email": teacher.email, "password": PASSWORD}).status_code == 429

    assert phone.post(LOGIN, json={"email": teacher.email, "password": PASSWORD}).status_code == 200


def test_a_forged_or_foreign_device_cookie_counts_as_no_device(app, teacher, make_person, session):
    other = make_person("teacher")
    set_password(session, other.email, PASSWORD)
    session.commit()
    script = app.test_client()
    assert script.post(LOGIN, json={"email": other.email, "password": PASSWORD}).status_code == 200  # its cookie
    for _ in range(5):
        script.post(LOGIN, json={"email": teacher.email, "password": "guess"})
    script.set_cookie(DEVICE_COOKIE, "forged", path="/api/v1/auth/login")
    for _ in range(5):
        script.post(LOGIN, json={"email": teacher.email, "password": "guess"})

    assert script.post(LOGIN, json={"email": teacher.email, "password": PASSWORD}).status_code == 429


def test_the_device_cookie_is_http_only_and_strict(client, teacher):
    cookie = log_in(client, teacher.email).headers["Set-Cookie"]

    assert cookie.startswith(DEVICE_COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/v1/auth/login" in cookie
    assert teacher.email not in cookie


def test_throttle_is_per_email(client, teacher, make_person, session):
    other = make_person("teacher")
    set_password(session, other.email, PASSWORD)
    session.commit()
    for _ in range(5):
        log_in(client, teacher.email, "wrong password")

    assert log_in(client, other.email).status_code == 200


def test_successful_logins_do_not_count(client, teacher):
    for _ in range(12):
        assert log_in(client, teacher.email).status_code == 200


class TestBehindTheLoadBalancer:
    """Every request comes from the balancer's address; X-Forwarded-For names the client."""

    @pytest.fixture
    def app_overrides(self):
        return {"TRUSTED_PROXIES": 1, "LOGIN_LIMIT_PER_ADDRESS": "30 per minute"}

    def via_balancer(self, client, client_address, email, password):
        return client.post(LOGIN, json={"email": email, "password": password}, environ_base=BALANCER,
                           headers={"X-Forwarded-For": client_address})

    def test_a_script_hammering_logins_cannot_stop_another_user_logging_in(self, app, teacher, make_person,
                                                                          session):
        other = make_person("teacher")
        set_password(session, other.email, PASSWORD)
        session.commit()
        script = app.test_client()
        answers = [self.via_balancer(script, "203.0.113.66", email, "guess").status_code
                   for _ in range(20) for email in (teacher.email, other.email, "nobody@example.org")]
        assert answers.count(429) > 20, "the script is slowed down"
        assert all(code in (401, 429) for code in answers)

        for person in (teacher, other):
            response = self.via_balancer(app.test_client(), "198.51.100.7", person.email, PASSWORD)
            assert response.status_code == 200, response.get_json()

    def test_the_hard_limit_counts_the_clients_address_not_the_balancers(self, app, teacher):
        script = app.test_client()
        for n in range(30):
            self.via_balancer(script, "203.0.113.66", f"guess{n}@example.org", "guess")

        refused = self.via_balancer(script, "203.0.113.66", teacher.email, PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert self.via_balancer(app.test_client(), "198.51.100.7", teacher.email, PASSWORD).status_code == 200


def test_without_trusted_proxies_x_forwarded_for_is_ignored(client, teacher):
    for n in range(5):
        client.post(LOGIN, json={"email": teacher.email, "password": "guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"})

    assert log_in(client, teacher.email, "guess").status_code == 429


def test_password_is_stored_with_argon2(client, teacher, session, monkeypatch):
    monkeypatch.setattr(service, "_hasher", PRODUCTION_HASHER)
    set_password(session, teacher.email, PASSWORD)
    session.commit()

    account = session.scalar(select(Account).where(Account.email == teacher.email))
    assert account.password_hash.startswith("$argon2id$")
    assert log_in(client, teacher.email).status_code == 200
    assert PASSWORD not in account.password_hash


def test_token_is_stored_only_as_its_sha256(client, teacher, session):
    token = log_in(client, teacher.email).get_json()["token"]

    rows = session.execute(text("SELECT * FROM auth_tokens")).all()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    assert session.scalar(select(AuthToken.token_hash)) == hashlib.sha256(token.encode()).hexdigest()


def test_set_password_for_unknown_email_is_not_found(session):
    with pytest.raises(NotFound, match="nobody@example.org"):
        set_password(session, "nobody@example.org", PASSWORD)


def test_short_password_is_refused(make_person, session):
    person = make_person("teacher")

    with pytest.raises(ValidationFailed, match="at least 10 characters"):
        set_password(session, person.email, "short")
    assert session.scalar(select(Account)) is None


def test_set_password_again_replaces_the_old_password(client, teacher, session):
    set_password(session, teacher.email, "a brand new password")
    session.commit()

    assert log_in(client, teacher.email).status_code == 401
    assert log_in(client, teacher.email, "a brand new password").status_code == 200
    assert len(session.scalars(select(Account)).all()) == 1


def test_partner_can_log_in(client, make_partner, session):
    partner = make_partner()
    set_password(session, partner.email, PASSWORD)
    session.commit()

    response = log_in(client, partner.email)

    assert response.status_code == 200
    assert response.get_json()["user"]["kind"] == "partner"


def test_disabled_person_cannot_log_in(client, teacher, session):
    teacher.active = False
    session.commit()

    response = log_in(client, teacher.email)

    assert response.status_code == 401
    assert response.get_json()["message"] == BAD_LOGIN


def test_disabling_a_person_stops_their_token(client, teacher, session):
    token = log_in(client, teacher.email).get_json()["token"]
    session.get(Person, teacher.id).active = False  # the request closed the session: load it again
    session.commit()

    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_disabling_a_partner_stops_their_token(client, make_partner, session):
    partner = make_partner()
    set_password(session, partner.email, PASSWORD)
    session.commit()
    token = log_in(client, partner.email).get_json()["token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200

    session.get(Partner, partner.id).active = False
    session.commit()

    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert "disabled" in response.get_json()["message"]


@pytest.mark.parametrize("body", [{"email": "a@example.org"}, {"password": "x"}, {}])
def test_login_with_a_missing_field_is_422(client, body):
    response = client.post(LOGIN, json=body)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"email", "password"} - set(body)
