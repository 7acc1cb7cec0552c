"""The directory over HTTP: schools, rooms, people and partners, for each role."""

from __future__ import annotations

import pytest

from emergency.phones import InvalidPhone, mask_phone, normalise_phone

API = "/api/v1"




@pytest.fixture
def district(make_school, make_room, make_person, make_partner):
    """Two schools; staff and a partner at A, a colleague and a partner at B, one inactive teacher."""
    a = make_school(code="A", name="Alpha Elementary")
    b = make_school(code="B", name="Beta Middle")
    room = make_room(a, number="101", name="Art", capacity=24)
    make_room(a, number="102", name="")
    make_room(b, number="201")
    people = {
        "district_admin": make_person("district_admin", name="Dee District"),
        "school_admin": make_person("school_admin", schools=[a], name="Sam Principal"),
        "teacher": make_person("teacher", schools=[a], name="Ana Teacher", home_room_id=room.id),
        "nurse": make_person("nurse", schools=[a], name="Nia Nurse"),
        "other_teacher": make_person("teacher", schools=[b], name="Bo Teacher"),
        "inactive": make_person("teacher", schools=[a], name="Old Teacher", active=False),
        "partner": make_partner(schools=[a], name="Officer Ava", agency="Port Chester PD"),
        "other_partner": make_partner(schools=[b], name="Officer Ben", agency="Rye Brook PD", role="fire"),
    }
    return a, b, people


@pytest.fixture
def as_(client, district, login):
    """as_(name) -> the Authorization header of that member of the district."""
    return lambda name: login(district[2][name])


def get(client, path, headers):
    response = client.get(API + path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("path", ["/schools", "/schools/1", "/schools/1/rooms", "/schools/1/people",
                                  "/schools/1/partners"])
def test_directory_needs_a_token(client, path):
    response = client.get(API + path)

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize("who, codes", [
    ("district_admin", ["A", "B"]),
    ("school_admin", ["A"]),
    ("teacher", ["A"]),
    ("partner", ["A"]),
    ("other_partner", ["B"]),
])
def test_schools_lists_only_schools_in_scope(client, as_, who, codes):
    schools = get(client, "/schools", as_(who))

    assert [s["code"] for s in schools] == codes


def test_school_shows_its_fields(client, district, as_):
    a = district[0]

    school = get(client, f"/schools/{a.id}", as_("teacher"))

    assert school == {"id": a.id, "code": "A", "name": "Alpha Elementary", "address": a.address,
                      "timezone": "America/New_York", "dismissal_time": "15:00"}


@pytest.mark.parametrize("who, sees_b", [("district_admin", True), ("school_admin", False), ("teacher", False),
                                         ("partner", False), ("other_partner", True)])
def test_school_by_id_within_scope_only(client, district, as_, who, sees_b):
    b = district[1]

    response = client.get(f"{API}/schools/{b.id}", headers=as_(who))

    assert response.status_code == (200 if sees_b else 404)


def test_rooms_of_a_school_in_number_order(client, district, as_):
    a = district[0]

    rooms = get(client, f"/schools/{a.id}/rooms", as_("teacher"))

    assert [r["number"] for r in rooms] == ["101", "102"]
    assert rooms[0]["school_id"] == a.id
    assert rooms[0]["name"] == "Art"
    assert rooms[0]["capacity"] == 24
    assert set(rooms[0]) == {"id", "school_id", "number", "name", "floor", "kind", "capacity"}


def test_partner_sees_rooms_of_covered_school(client, district, as_):
    rooms = get(client, f"/schools/{district[0].id}/rooms", as_("partner"))

    assert [r["number"] for r in rooms] == ["101", "102"]


def test_people_lists_active_staff_of_the_school(client, district, as_):
    people = get(client, f"/schools/{district[0].id}/people", as_("school_admin"))

    assert [p["name"] for p in people] == ["Ana Teacher", "Nia Nurse", "Sam Principal"]


@pytest.mark.parametrize("who", ["district_admin", "school_admin"])
def test_admins_see_staff_mobiles_and_emails(client, district, as_, who):
    a, _, members = district

    people = {p["name"]: p for p in get(client, f"/schools/{a.id}/people", as_(who))}

    teacher = members["teacher"]
    assert people["Ana Teacher"]["mobile"] == teacher.mobile
    assert people["Ana Teacher"]["email"] == teacher.email
    assert people["Ana Teacher"]["home_room_id"] == teacher.home_room_id


@pytest.mark.parametrize("who", ["teacher", "nurse"])
def test_teacher_never_sees_staff_mobile(client, district, as_, who):
    people = get(client, f"/schools/{district[0].id}/people", as_(who))

    assert people
    assert all(p["mobile"] is None for p in people)
    assert all(p["email"] for p in people)  # colleagues' emails are fine


def test_partner_never_sees_staff_mobile_or_email(client, district, as_):
    a, _, members = district

    response = client.get(f"{API}/schools/{a.id}/people", headers=as_("partner"))

    people = response.get_json()
    assert response.status_code == 200 and people
    assert all(p["mobile"] is None and p["email"] is None for p in people)
    body = response.get_data(as_text=True)
    for name in ("teacher", "nurse", "school_admin"):
        assert members[name].mobile not in body
        assert members[name].email not in body


@pytest.mark.parametrize("who, sees_mobile", [("district_admin", True), ("school_admin", True),
                                              ("teacher", False), ("partner", False)])
def test_partner_list_shows_mobiles_to_admins_only(client, district, as_, who, sees_mobile):
    a, _, members = district

    partners = get(client, f"/schools/{a.id}/partners", as_(who))

    assert [p["name"] for p in partners] == ["Officer Ava"]
    assert partners[0]["agency"] == "Port Chester PD"
    assert partners[0]["mobile"] == (members["partner"].mobile if sees_mobile else None)


def test_partner_never_sees_partner_emails(client, district, as_):
    partners = get(client, f"/schools/{district[0].id}/partners", as_("partner"))

    assert all(p["email"] is None for p in partners)


def test_school_admin_of_another_school_sees_no_mobiles(client, district, make_person, login):
    a, b, _ = district
    admin_of_b = login(make_person("school_admin", schools=[b]))
    staff_of_both = make_person("teacher", schools=[a, b], name="Shared Teacher")

    people = {p["name"]: p for p in get(client, f"/schools/{b.id}/people", admin_of_b)}

    assert people["Shared Teacher"]["mobile"] == staff_of_both.mobile
    assert client.get(f"{API}/schools/{a.id}/people", headers=admin_of_b).status_code == 404


@pytest.mark.parametrize("suffix", ["rooms", "people", "partners"])
def test_lists_of_an_out_of_scope_school_are_404(client, district, as_, suffix):
    response = client.get(f"{API}/schools/{district[1].id}/{suffix}", headers=as_("teacher"))

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_two_callers_in_one_test_each_see_their_own_scope(client, as_):
    assert [s["code"] for s in get(client, "/schools", as_("teacher"))] == ["A"]
    assert [s["code"] for s in get(client, "/schools", as_("other_partner"))] == ["B"]
    assert [s["code"] for s in get(client, "/schools", as_("district_admin"))] == ["A", "B"]


# Phone numbers: how mobiles are stored (E.164) and shown in logs (masked).

@pytest.mark.parametrize("text, e164", [
    ("(914) 555-0100", "+19145550100"),
    ("914-555-0100", "+19145550100"),
    ("914.555.0100", "+19145550100"),
    ("9145550100", "+19145550100"),
    ("1 (914) 555-0100", "+19145550100"),
    ("  +1 914 555 0100  ", "+19145550100"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_normalise_phone_accepts_valid_numbers_as_e164(text, e164):
    assert normalise_phone(text) == e164


def test_normalise_phone_uses_the_default_region():
    assert normalise_phone("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize("text, reason", [
    ("", "is empty"),
    ("   ", "is empty"),
    ("call me", "is not a phone number"),
    ("555-0100", "is not a valid phone number"),
    ("(914) 555-010", "is not a valid phone number"),
    ("+1 555 555 5555", "is not a valid phone number"),
    ("911", "is not a valid phone number"),
    ("(914) 555-0100 ext. 12", "extension"),
])
def test_normalise_phone_rejects_invalid_numbers_with_a_reason(text, reason):
    with pytest.raises(InvalidPhone, match=reason):
        normalise_phone(text)


def test_invalid_phone_is_a_value_error():
    assert issubclass(InvalidPhone, ValueError)


@pytest.mark.parametrize("e164, masked", [
    ("+19145550100", "+1••••••0100"),
    ("+442079460958", "+4•••••••0958"),
    (None, None),
    ("", ""),
    ("+1234", "•••••"),
])
def test_mask_phone_hides_all_but_the_ends(e164, masked):
    assert mask_phone(e164) == masked
