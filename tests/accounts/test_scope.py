"""Scoping: which schools each caller may see, and out-of-scope answered exactly like missing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from emergency.accounts.models import Account
from emergency.accounts.service import principal_for, set_password
from emergency.directory.principal import Principal
from emergency.directory.service import get_school, schools_in_scope
from emergency.errors import NotFound
from tests.conftest import PASSWORD


@pytest.fixture
def district(make_school):
    """Two schools: A, where everyone in these tests works, and B."""
    return make_school(code="A", name="Alpha Elementary"), make_school(code="B", name="Beta Middle")


@pytest.fixture
def principal_of(session):
    def make(owner) -> Principal:
        set_password(session, owner.email, PASSWORD)
        session.commit()
        return principal_for(session.scalar(select(Account).where(Account.email == owner.email)))

    return make


def test_district_admin_sees_every_school(district, make_person, principal_of, session):
    a, b = district
    admin = principal_of(make_person("district_admin"))  # belongs to no school in particular

    assert admin.school_ids is None
    assert admin.is_district_admin
    assert [s.code for s in schools_in_scope(session, admin)] == ["A", "B"]
    assert get_school(session, admin, b.id) is b
    assert admin.is_admin_of(a.id) and admin.is_admin_of(b.id)


@pytest.mark.parametrize("role", ["school_admin", "teacher", "staff", "nurse", "security"])
def test_school_staff_see_only_their_own_school(district, make_person, principal_of, session, role):
    a, b = district
    principal = principal_of(make_person(role, schools=[a]))

    assert principal.school_ids == frozenset({a.id})
    assert [s.code for s in schools_in_scope(session, principal)] == ["A"]
    assert get_school(session, principal, a.id) is a
    with pytest.raises(NotFound):
        get_school(session, principal, b.id)


def test_school_admin_administers_only_their_school(district, make_person, principal_of):
    a, b = district
    admin = principal_of(make_person("school_admin", schools=[a]))

    assert admin.is_admin_of(a.id)
    assert not admin.is_admin_of(b.id)


def test_teacher_administers_no_school(district, make_person, principal_of):
    a, _ = district
    teacher = principal_of(make_person("teacher", schools=[a]))

    assert not teacher.is_admin_of(a.id)


def test_staff_in_two_schools_see_both(district, make_person, make_school, principal_of, session):
    a, b = district
    make_school(code="C")
    teacher = principal_of(make_person("teacher", schools=[a, b]))

    assert [s.code for s in schools_in_scope(session, teacher)] == ["A", "B"]


def test_staff_with_no_school_see_none(district, make_person, principal_of, session):
    teacher = principal_of(make_person("teacher"))

    assert schools_in_scope(session, teacher) == []
    with pytest.raises(NotFound):
        get_school(session, teacher, district[0].id)


def test_partner_sees_only_covered_schools(district, make_partner, principal_of, session):
    a, b = district
    partner = principal_of(make_partner(schools=[b]))

    assert partner.is_partner
    assert partner.role == "partner"
    assert [s.code for s in schools_in_scope(session, partner)] == ["B"]
    assert get_school(session, partner, b.id) is b
    with pytest.raises(NotFound):
        get_school(session, partner, a.id)
    assert not partner.is_admin_of(b.id)


def test_out_of_scope_school_is_the_same_error_as_a_missing_one(district, make_person, principal_of, session):
    a, b = district
    teacher = principal_of(make_person("teacher", schools=[a]))
    missing_id = b.id + 1000

    with pytest.raises(NotFound) as out_of_scope:
        get_school(session, teacher, b.id)
    with pytest.raises(NotFound) as missing:
        get_school(session, teacher, missing_id)

    assert out_of_scope.value.message.replace(str(b.id), "ID") == missing.value.message.replace(str(missing_id), "ID")
    assert out_of_scope.value.errors == missing.value.errors
    assert out_of_scope.value.extra == missing.value.extra


@pytest.mark.parametrize("suffix", ["", "/rooms", "/people", "/partners"])
def test_out_of_scope_school_over_http_is_a_404_like_a_missing_one(
        client, district, make_person, login, suffix):
    a, b = district
    headers = login(make_person("teacher", schools=[a]))
    missing_id = b.id + 1000

    out_of_scope = client.get(f"/api/v1/schools/{b.id}{suffix}", headers=headers)
    missing = client.get(f"/api/v1/schools/{missing_id}{suffix}", headers=headers)

    assert out_of_scope.status_code == missing.status_code == 404
    assert {k for k, _ in out_of_scope.headers.items()} == {k for k, _ in missing.headers.items()}
    assert (out_of_scope.get_data(as_text=True).replace(str(b.id), "ID")
            == missing.get_data(as_text=True).replace(str(missing_id), "ID"))
    assert "Beta" not in out_of_scope.get_data(as_text=True)


def test_principal_actor_records_who_acted(district, make_person, principal_of):
    teacher = make_person("teacher", schools=[district[0]], name="Ana Teacher")

    assert principal_of(teacher).actor() == {"kind": "person", "id": teacher.id, "name": "Ana Teacher",
                                             "role": "teacher"}
