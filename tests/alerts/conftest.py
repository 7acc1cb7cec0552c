"""Fixtures shared by the alert tests; plain helpers are in tests/alerts/helpers.py.

The app gets a Twilio auth token so that webhooks can be signed. Modules that send through the
fake Twilio override `app_overrides` with `fake_twilio_settings(fake)`; a module's own fixtures
(`app_overrides`, `school`, `fake`) win over these.
"""

from __future__ import annotations

import pytest

from emergency.alerts.signature import sign
from tests.alerts.helpers import SCHOOL, TOKEN


@pytest.fixture
def app_overrides() -> dict:
    return {"TWILIO_AUTH_TOKEN": TOKEN}


@pytest.fixture
def fake(fake_twilio):
    """The FakeTwilio of tests/conftest.py under a shorter name."""
    return fake_twilio


@pytest.fixture
def school(make_school):
    return make_school(name=SCHOOL)


@pytest.fixture
def principal(school, make_person):
    return make_person("school_admin", [school], name="Pat Principal")


@pytest.fixture
def teacher(school, make_person):
    return make_person("teacher", [school], name="Tess Teacher")


@pytest.fixture
def partner(school, make_partner):
    return make_partner([school], name="Officer Obi")


@pytest.fixture
def signed(client, app):
    """POST form params to a webhook path, signed for http://testserver + path (query included).

    Signed with the app's TWILIO_AUTH_TOKEN unless another token is given.
    """

    def post(path: str, params: dict, token: str | None = None):
        signature = sign(token or app.config["TWILIO_AUTH_TOKEN"], "http://testserver" + path, params)
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    return post
