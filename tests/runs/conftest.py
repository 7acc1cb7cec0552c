import pytest


@pytest.fixture
def school_setup(make_school, make_room, make_person, make_partner, login):
    """A school with a principal, two teachers, a nurse, a partner, and a district admin."""

    class Setup:
        pass

    s = Setup()
    s.school = make_school(name="Port Chester Middle School")
    s.other_school = make_school(name="Other School")
    s.room = make_room(s.school, number="204")
    s.principal = make_person("school_admin", [s.school], name="Pat Principal")
    s.teacher = make_person("teacher", [s.school], name="Tess Teacher", home_room_id=s.room.id)
    s.teacher2 = make_person("teacher", [s.school], name="Theo Teacher")
    s.nurse = make_person("nurse", [s.school], name="Nina Nurse")
    s.outsider = make_person("teacher", [s.other_school], name="Olga Outsider")
    s.district = make_person("district_admin", [], name="Dana District")
    s.partner = make_partner([s.school], name="Officer Obi")
    s.login = login
    return s


@pytest.fixture
def start(client):
    """POST /api/v1/runs as someone; returns the response."""

    def do(headers, school, playbook="lockdown", mode="drill", **extra):
        body = {"school_id": school.id, "playbook": playbook, "mode": mode, **extra}
        if mode == "real":
            body.setdefault("confirm", True)
        return client.post("/api/v1/runs", json=body, headers=headers)

    return do
