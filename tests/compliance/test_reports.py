"""After-action reports of a drill run through the API (JSON, CSV, HTML), who may read them, and trends."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, update

from emergency.alerts.delivery import apply_provider_status
from emergency.alerts.models import Alert
from emergency.compliance.reports import chart, clock
from emergency.directory.models import Person
from tests.compliance import test_counting

cheap_passwords = test_counting.cheap_passwords  # autouse: logins hash cheaply

UPDATE = 'Room 3 door stuck <script>alert("x")</script>'
STUDENT = "Jane Doe"


class School:
    """A school with three classrooms, its principal, four teachers (one without a phone) and a partner."""

    def __init__(self, client, login, make_school, make_room, make_person, make_partner):
        self.client, self._login, self._headers = client, login, {}
        self.school = make_school(name="Lincoln Elementary", code="LIN")
        self.rooms = [make_room(self.school, number=n, name="") for n in ("101", "102", "103")]
        self.principal = make_person("school_admin", [self.school], name="Pat Principal")
        self.tess = make_person("teacher", [self.school], name="Tess Teacher", home_room_id=self.rooms[0].id)
        self.theo = make_person("teacher", [self.school], name="Theo Teacher", home_room_id=self.rooms[1].id)
        self.nomi = make_person("teacher", [self.school], name="Nomi Nophone", home_room_id=self.rooms[2].id,
                                mobile=None)
        self.ursula = make_person("teacher", [self.school], name="Ursula Undelivered")
        self.district = make_person("district_admin", [], name="Dana District")
        self.partner = make_partner([self.school], name="Officer Obi")

    def h(self, who) -> dict:
        if who.email not in self._headers:
            self._headers[who.email] = self._login(who)
        return self._headers[who.email]

    def post(self, path: str, who, body: dict | None = None) -> dict:
        response = self.client.post(path, json=body or {}, headers=self.h(who))
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    def report(self, run_id: int, who=None, fmt: str | None = None):
        query = {"format": fmt} if fmt else {}
        return self.client.get(f"/api/v1/runs/{run_id}/report", headers=self.h(who or self.principal),
                               query_string=query)


@pytest.fixture
def lincoln(client, login, make_school, make_room, make_person, make_partner) -> School:
    return School(client, login, make_school, make_room, make_person, make_partner)


@pytest.fixture
def drill(lincoln, session) -> int:
    """An evacuation drill: two acknowledgements, two rooms checked in, one failed SMS, an update, all clear."""
    run_id = lincoln.post("/api/v1/runs", lincoln.principal, {
        "school_id": lincoln.school.id, "playbook": "evacuate", "mode": "drill",
        "location": "North field (primary)", "note": "Announced fire drill"})["id"]
    lincoln.post(f"/api/v1/runs/{run_id}/ack", lincoln.tess)
    lincoln.post(f"/api/v1/runs/{run_id}/ack", lincoln.theo)
    lincoln.post(f"/api/v1/runs/{run_id}/checkins", lincoln.tess, {"status": "all_accounted", "present": 22})
    lincoln.post(f"/api/v1/runs/{run_id}/checkins", lincoln.theo, {
        "status": "students_missing", "present": 20, "missing": 1, "missing_students": [STUDENT]})
    sms = session.scalar(select(Alert).where(Alert.run_id == run_id, Alert.person_id == lincoln.ursula.id,
                                             Alert.channel == "sms"))
    apply_provider_status(session, sms, "undelivered", 30007)
    session.commit()
    lincoln.post(f"/api/v1/runs/{run_id}/updates", lincoln.principal, {"message": UPDATE})
    lincoln.post(f"/api/v1/runs/{run_id}/all-clear", lincoln.principal, {"message": "Good drill, 4 minutes"})
    return run_id


def test_json_report_has_summary_timeline_alerts_accountability_and_notes(lincoln, drill):
    response = lincoln.report(drill)

    assert response.status_code == 200
    report = response.get_json()
    summary = report["summary"]
    assert summary["school"]["name"] == "Lincoln Elementary"
    assert (summary["playbook"]["name"], summary["mode"], summary["end_reason"]) == ("Evacuate", "drill", "all_clear")
    assert summary["started_by"] == {"name": "Pat Principal", "role": "school_admin"}
    assert summary["ended_by"]["name"] == "Pat Principal"
    assert summary["duration_seconds"] >= 0 and summary["started_at"] and summary["ended_at"]

    types = [row["type"] for row in report["timeline"]]
    assert types[0] == "run.started" and types[-1] == "run.ended"
    assert {"ack.recorded", "checkin.recorded", "alert.failed", "alert.unreachable", "run.updated"} <= set(types)
    assert [row["seq"] for row in report["timeline"]] == sorted(row["seq"] for row in report["timeline"])
    assert report["timeline"][-1]["text"] == "All clear: Good drill, 4 minutes"

    alerts = report["alerts"]
    # all_staff asks the principal and the four teachers to acknowledge; two did.
    assert (alerts["asked_to_acknowledge"], alerts["acknowledged"], alerts["ack_rate"]) == (5, 2, 0.4)
    assert alerts["failed"] >= 2 and alerts["sent"] >= 1
    assert alerts["median_ack_seconds"] is not None and alerts["p90_ack_seconds"] is not None
    assert sorted(a["name"] for a in alerts["acknowledgements"]) == ["Tess Teacher", "Theo Teacher"]

    unreachable = {person["name"]: person for person in report["unreachable"]}
    assert set(unreachable) == {"Nomi Nophone", "Ursula Undelivered"}
    assert unreachable["Nomi Nophone"]["reasons"] == ["no mobile number in the directory"]

    accountability = report["accountability"]
    assert (accountability["expected"], accountability["reported"]) == (3, 2)
    rooms = {room["number"]: room for room in accountability["rooms"]}
    assert rooms["101"]["status"] == "all_accounted" and rooms["101"]["checked_in_at"]
    assert (rooms["102"]["status"], rooms["102"]["missing"]) == ("students_missing", 1)
    assert (rooms["103"]["status"], rooms["103"]["checked_in_at"]) == ("not_reported", None)
    assert [point["reported"] for point in accountability["curve"]] == [1, 2]
    figures = accountability["figures"]
    assert figures["seconds_to_first_checkin"] is not None and figures["seconds_to_50_percent"] is not None
    assert figures["seconds_to_100_percent"] is None

    assert [(note["kind"], note["message"]) for note in report["notes"]] == [
        ("note", "Announced fire drill"), ("update", UPDATE), ("all_clear", "Good drill, 4 minutes")]


def test_student_names_never_appear_in_any_format(lincoln, drill):
    for fmt in (None, "csv", "html"):
        assert STUDENT not in lincoln.report(drill, fmt=fmt).get_data(as_text=True)


def test_csv_has_timeline_rows_then_one_row_per_room(lincoln, drill):
    response = lincoln.report(drill, fmt="csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"run-{drill}-report.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    sections = [row["section"] for row in rows]
    assert sections == sorted(sections, key=["timeline", "room"].index)
    assert sections.count("room") == 3
    assert rows[0]["type"] == "run.started"
    rooms = {row["room"]: row for row in rows if row["section"] == "room"}
    assert (rooms["101"]["status"], rooms["101"]["present"]) == ("all_accounted", "22")
    assert rooms["103"]["status"] == "not_reported"


def test_csv_cells_cannot_become_spreadsheet_formulas(lincoln, session, drill):
    session.execute(update(Person).where(Person.id == lincoln.tess.id).values(name='=HYPERLINK("http://evil.example")'))
    session.commit()
    run_id = lincoln.post("/api/v1/runs", lincoln.principal, {
        "school_id": lincoln.school.id, "playbook": "lockdown", "mode": "drill"})["id"]
    lincoln.post(f"/api/v1/runs/{run_id}/checkins", lincoln.tess, {"status": "all_accounted", "present": 3})

    text = lincoln.report(run_id, fmt="csv").get_data(as_text=True)

    assert "'=HYPERLINK" in text
    assert ',"=HYPERLINK' not in text and ",=HYPERLINK" not in text


def test_html_is_a_self_contained_printable_page_with_the_chart(lincoln, drill):
    response = lincoln.report(drill, fmt="html")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert page.startswith("<!doctype html>")
    assert "<svg" in page and "<polyline" in page and "Rooms reported" in page
    assert "@media print" in page and "@page" in page
    assert "<link" not in page and "src=" not in page and "<script" not in page
    assert "&lt;script&gt;" in page  # the update, escaped
    for text in ("Lincoln Elementary", "Evacuate", "Pat Principal", "Nomi Nophone", "Ursula Undelivered",
                 "Announced fire drill", "not reported", "All clear: Good drill, 4 minutes"):
        assert text in page, text


def test_html_of_a_run_without_checkins_still_draws_the_chart(lincoln):
    run_id = lincoln.post("/api/v1/runs", lincoln.principal, {
        "school_id": lincoln.school.id, "playbook": "lockdown", "mode": "drill"})["id"]
    lincoln.post(f"/api/v1/runs/{run_id}/cancel", lincoln.principal, {"reason": "wrong button"})

    page = lincoln.report(run_id, fmt="html").get_data(as_text=True)
    report = lincoln.report(run_id).get_json()

    assert "<svg" in page and "No check-ins were recorded for this run." in page
    assert report["accountability"]["note"] == "No check-ins were recorded for this run."
    assert report["summary"]["end_reason"] == "cancelled"


def test_staff_of_the_school_and_district_admins_read_the_report(lincoln, make_person, drill):
    outsider = make_person("school_admin", [])

    assert lincoln.report(drill, lincoln.ursula).status_code == 200
    assert lincoln.report(drill, lincoln.district).status_code == 200
    assert lincoln.report(drill, outsider).status_code == 404


def test_partners_never_see_drill_reports(lincoln, drill):
    assert lincoln.report(drill, lincoln.partner).status_code == 404


def test_partners_see_real_run_reports_redacted(lincoln):
    run_id = lincoln.post("/api/v1/runs", lincoln.principal, {
        "school_id": lincoln.school.id, "playbook": "lockdown", "mode": "real", "confirm": True})["id"]
    lincoln.post(f"/api/v1/runs/{run_id}/checkins", lincoln.theo, {
        "status": "students_missing", "present": 20, "missing": 1, "missing_students": [STUDENT]})

    response = lincoln.report(run_id, lincoln.partner)
    html = lincoln.report(run_id, lincoln.partner, fmt="html")

    assert response.status_code == 200 and html.status_code == 200
    text = response.get_data(as_text=True)
    for hidden in ('"mobile"', '"to_number"', '"body"', "missing_students", STUDENT, "+1212555"):
        assert hidden not in text, hidden
    assert response.get_json()["summary"]["mode"] == "real"


def test_unknown_format_is_422(lincoln, drill):
    assert lincoln.report(drill, fmt="pdf").status_code == 422


def test_trends_show_each_drill_with_ack_rate_and_time_to_full_accountability(lincoln):
    for acknowledged in (True, False):
        run_id = lincoln.post("/api/v1/runs", lincoln.principal, {
            "school_id": lincoln.school.id, "playbook": "lockdown", "mode": "drill"})["id"]
        if acknowledged:
            for teacher in (lincoln.tess, lincoln.theo, lincoln.nomi, lincoln.ursula):
                lincoln.post(f"/api/v1/runs/{run_id}/ack", teacher)
        for teacher in (lincoln.tess, lincoln.theo, lincoln.nomi):
            lincoln.post(f"/api/v1/runs/{run_id}/checkins", teacher, {"status": "all_accounted", "present": 20})
        lincoln.post(f"/api/v1/runs/{run_id}/all-clear", lincoln.principal)

    response = lincoln.client.get("/api/v1/reports/trends", headers=lincoln.h(lincoln.district),
                                  query_string={"school_id": lincoln.school.id})

    assert response.status_code == 200
    body = response.get_json()
    rows = body["drills"]
    assert [row["category"] for row in rows] == ["lockdown", "lockdown"]
    assert [(row["recipients_alerted"], row["recipients_acknowledged"], row["ack_rate"]) for row in rows] == [
        (5, 4, 0.8), (5, 0, 0.0)]
    assert all(row["seconds_to_full_accountability"] is not None for row in rows)
    school = body["schools"][0]
    assert (school["drills"], school["earlier"]["ack_rate"], school["later"]["ack_rate"]) == (2, 0.8, 0.0)


def test_clock_and_chart_helpers():
    assert [clock(None), clock(0), clock(65.4), clock(3725)] == ["", "0:00", "1:05", "1:02:05"]
    report = {"summary": {"duration_seconds": 300.0},
              "accountability": {"expected": 4, "curve": [{"seconds": 30, "reported": 2}, {"seconds": 240,
                                                                                           "reported": 4}]},
              "alerts": {"asked_to_acknowledge": 0, "acknowledgements": []}}

    drawn = chart(report)

    assert [tick["label"] for tick in drawn["x_ticks"]] == ["0:00", "1:00", "2:00", "3:00", "4:00", "5:00"]
    assert drawn["series"][0]["final"] == 100 and not drawn["empty"]
    points = [tuple(map(float, point.split(","))) for point in drawn["series"][0]["points"].split()]
    assert points[0] == (drawn["left"], drawn["bottom"])  # 0% at the start
    assert points[-1][1] == drawn["top"]  # 100% at the end
