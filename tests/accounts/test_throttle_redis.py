"""With REDIS_URL, login failures are counted in Redis: every instance (and a restart) sees them."""

from __future__ import annotations

import os
import uuid

import pytest

from emergency.accounts.service import set_password
from emergency.app import create_app
from emergency.db import db
from tests.conftest import PASSWORD

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("needs TEST_REDIS_URL")
    return url


def test_failures_counted_by_one_instance_slow_down_the_next(make_config, make_school, make_person, redis_url):
    prefix = f"test-{uuid.uuid4().hex}"  # this test's own keys in a shared Redis
    config = dict(REDIS_URL=redis_url, extra={"RATELIMIT_KEY_PREFIX": prefix})
    first = create_app(make_config(**config))
    with first.app_context():
        person = make_person("teacher", [make_school()])
        set_password(db.session, person.email, PASSWORD)
        db.session.commit()
        for _ in range(5):
            first.test_client().post("/api/v1/auth/login", json={"email": person.email, "password": "guess"})

    second = create_app(make_config(**config))  # a fresh process: memory storage would have forgotten

    response = second.test_client().post("/api/v1/auth/login", json={"email": person.email, "password": PASSWORD})
    assert response.status_code == 429 and response.headers["Retry-After"]
    for application in (first, second):
        application.extensions["db"]["engine"].dispose()
