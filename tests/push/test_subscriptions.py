"""Registering, listing and removing push devices; logout; a school's push coverage."""

from __future__ import annotations

import pytest

from emergency.push.models import PushSubscription
from emergency.push.service import MAX_DEVICES_PER_PERSON


@pytest.fixture
def school(make_school):
    return make_school()


@pytest.fixture
def teacher(school, make_person):
    return make_person("teacher", [school], name="Tess Teacher")


def test_a_teacher_registers_lists_and_removes_a_device(client, login, teacher, push_service):
    headers = login(teacher)
    device = push_service.new_device()
    created = client.post("/api/v1/me/push-subscriptions", headers=headers,
                          json={**device.subscription(), "user_agent": "Pixel 8 Chrome"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["push_service"] == "127.0.0.1" and body["user_agent"] == "Pixel 8 Chrome"
    assert body["this_device"] is True
    assert "endpoint" not in body  # a capability: never shown back
    listed = client.get("/api/v1/me/push-subscriptions", headers=headers).get_json()
    assert [d["id"] for d in listed] == [body["id"]]
    assert client.delete(f"/api/v1/me/push-subscriptions/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me/push-subscriptions", headers=headers).get_json() == []


def test_the_same_browser_registering_again_is_one_device(client, login, teacher, push_service, session):
    headers = login(teacher)
    device = push_service.new_device()
    for _ in range(2):
        assert client.post("/api/v1/me/push-subscriptions", headers=headers,
                           json=device.subscription()).status_code == 201
    assert session.query(PushSubscription).count() == 1


def test_a_person_may_have_several_devices_but_not_unbounded(client, login, teacher, push_service, session):
    headers = login(teacher)
    for _ in range(MAX_DEVICES_PER_PERSON + 2):
        client.post("/api/v1/me/push-subscriptions", headers=headers, json=push_service.new_device().subscription())
    assert len(client.get("/api/v1/me/push-subscriptions", headers=headers).get_json()) == MAX_DEVICES_PER_PERSON


@pytest.mark.parametrize(("change", "field"), [
    ({"endpoint": "ftp://push.example/x1234"}, "endpoint"),
    ({"keys": {"p256dh": "not-a-key", "auth": "tBHItJI5svbpez7KI4CCXg"}}, "keys.p256dh"),
    ({"keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
               "auth": "short"}}, "keys.auth"),
])
def test_a_malformed_subscription_is_refused_with_422(client, login, teacher, push_service, change, field):
    body = {**push_service.new_device().subscription(), **change}
    response = client.post("/api/v1/me/push-subscriptions", headers=login(teacher), json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_a_missing_key_is_a_validation_error(client, login, teacher):
    response = client.post("/api/v1/me/push-subscriptions", headers=login(teacher),
                           json={"endpoint": "https://push.example/abc"})
    assert response.status_code == 422
    assert "keys" in response.get_json()["errors"]


def test_someone_elses_device_answers_404(client, login, teacher, school, make_person, push_service, subscribe):
    device = subscribe(login(teacher), push_service)
    other = login(make_person("teacher", [school]))
    assert client.delete(f"/api/v1/me/push-subscriptions/{device.subscription_id}", headers=other).status_code == 404


def test_partners_cannot_register_for_push(client, login, make_partner, school, push_service):
    response = client.post("/api/v1/me/push-subscriptions", headers=login(make_partner([school])),
                           json=push_service.new_device().subscription())
    assert response.status_code == 403


def test_logging_a_device_out_removes_its_subscription_only(client, login, teacher, push_service, subscribe,
                                                           session):
    phone = login(teacher)
    subscribe(phone, push_service)
    laptop = login(teacher)
    kept = subscribe(laptop, push_service)
    assert client.post("/api/v1/auth/logout", headers=phone).status_code == 204
    assert [s.id for s in session.query(PushSubscription)] == [kept.subscription_id]


def test_push_config_gives_the_public_key(client, login, teacher, app):
    body = client.get("/api/v1/push/config", headers=login(teacher)).get_json()
    assert body == {"enabled": True, "public_key": app.extensions["push_public_key"]}
    assert len(body["public_key"]) == 87  # 65 bytes, base64url


def test_admins_see_how_many_staff_have_push_on(client, login, school, teacher, make_person, push_service,
                                                subscribe):
    principal = make_person("school_admin", [school], name="Pat Principal")
    subscribe(login(teacher), push_service)
    subscribe(login(teacher), push_service)
    body = client.get(f"/api/v1/schools/{school.id}/push", headers=login(principal)).get_json()
    assert (body["staff"], body["staff_with_push"], body["devices"]) == (2, 1, 2)
    assert [p["name"] for p in body["without_push"]] == ["Pat Principal"]


def test_teachers_cannot_see_push_coverage(client, login, school, teacher):
    assert client.get(f"/api/v1/schools/{school.id}/push", headers=login(teacher)).status_code == 403
