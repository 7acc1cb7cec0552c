"""A small generated district with a roster and a bell schedule, and helpers to run a drill in it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from emergency.directory.csv_io import import_directory
from emergency.directory.models import Person, Room, School
from emergency.roster.oneroster import import_roster
from emergency.roster.sample import generate_district
from emergency.roster.schedules import import_schedules
from emergency.runs.models import Run

# Tuesday 1 December 2026, 09:00 in New York: period 2 (08:49-09:34) of the generated schedule.
IN_PERIOD_2 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
# The same day at 11:30: lunch, between periods 4 and 5.
AT_LUNCH = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)


class District:
    """G1 (elementary, homerooms) and G2 (six periods), 4 teachers and 100 students each."""

    def __init__(self, session, client, login, folder):
        self.session, self.client, self._login, self._headers = session, client, login, {}
        self.files = generate_district(folder, students=200, schools=2, class_size=25)
        import_directory(session, folder / "directory")
        import_schedules(session, folder / "bell_schedules.csv")
        self.report = import_roster(session, folder / "oneroster")
        self.g1 = session.scalar(select(School).where(School.code == "G1"))
        self.g2 = session.scalar(select(School).where(School.code == "G2"))

    def person(self, email: str) -> Person:
        return self.session.scalar(select(Person).where(Person.email == email))

    def teacher(self, school: str, n: int) -> Person:
        return self.person(f"teacher{n}@{school.lower()}.example.org")

    def principal(self, school: str) -> Person:
        return self.person(f"principal@{school.lower()}.example.org")

    def room(self, school: School, number: str) -> Room:
        return self.session.scalar(select(Room).where(Room.school_id == school.id, Room.number == number))

    def h(self, who) -> dict:
        if who.email not in self._headers:
            self._headers[who.email] = self._login(who)
        return self._headers[who.email]

    def start(self, school: School, at: datetime = IN_PERIOD_2, mode: str = "drill", playbook: str = "lockdown") -> int:
        body = {"school_id": school.id, "playbook": playbook, "mode": mode, "confirm": mode == "real"}
        response = self.client.post("/api/v1/runs", json=body, headers=self.h(self.principal(school.code)))
        assert response.status_code == 201, response.get_json()
        run_id = response.get_json()["id"]
        # The roster of a run is worked out from the moment it started.
        self.session.execute(update(Run).where(Run.id == run_id).values(started_at=at))
        self.session.commit()
        return run_id

    def get(self, path: str, who, **params):
        return self.client.get(path, query_string=params, headers=self.h(who))

    def check_in(self, run_id: int, who, key: str | None = None, **body):
        headers = dict(self.h(who))
        if key:
            headers["Idempotency-Key"] = key
        return self.client.post(f"/api/v1/runs/{run_id}/roster/checkins", json=body, headers=headers)


@pytest.fixture
def district(session, client, login, tmp_path):
    return District(session, client, login, tmp_path / "district")
