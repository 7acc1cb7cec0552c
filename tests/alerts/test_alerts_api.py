"""GET /runs/{id}/alerts, acknowledgement timing, and GET /schools/{id}/opt-outs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from emergency.alerts.acks import ack_stats, acknowledge
from emergency.alerts.models import Acknowledgement, Alert, OptOut
from emergency.phones import mask_phone
from tests.alerts.helpers import start


def recipient(body: dict, name: str) -> dict:
    return next(r for r in body["recipients"] if r["name"] == name)


def test_admin_sees_every_recipient_with_numbers_and_statuses(app, client, login, session, school, principal,
                                                               teacher, partner):
    run = start(app, teacher, school, mode="real")
    acknowledge(session, run, person_id=teacher.id, channel="sms")

    response = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(principal))

    assert response.status_code == 200
    body = response.get_json()
    assert body["run_id"] == run.id and body["mode"] == "real"
    assert body["summary"]["acknowledged"] == 1 and body["summary"]["recipients"] == 3
    tess = recipient(body, "Tess Teacher")
    assert tess["kind"] == "person" and tess["role"] == "teacher" and tess["to_number"] == teacher.mobile
    assert tess["ack_channel"] == "sms" and tess["acknowledged_at"] and tess["ack_seconds"] >= 0
    assert {a["channel"] for a in tess["alerts"]} == {"push", "sms"}
    sms = next(a for a in tess["alerts"] if a["channel"] == "sms")
    assert set(sms) == {"id", "occasion", "channel", "status", "provider_status", "error_code", "error_message",
                        "to_number", "queued_at", "sent_at", "delivered_at", "acknowledged_at", "ack_channel"}
    assert sms["status"] == "queued" and sms["ack_channel"] == "sms"
    obi = recipient(body, "Officer Obi")
    assert obi["kind"] == "partner" and {a["channel"] for a in obi["alerts"]} == {"sms", "voice"}
    assert body["recipients"][0]["name"] == "Officer Obi"  # partners are alerted first
    assert body["acks"]["count"] == 1 and body["acks"]["acknowledgements"][0]["name"] == "Tess Teacher"


def test_teachers_see_masked_numbers(app, client, login, session, school, principal, teacher):
    run = start(app, principal, school)

    body = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(teacher)).get_json()

    pat = recipient(body, "Pat Principal")
    assert pat["to_number"] == mask_phone(principal.mobile) != principal.mobile
    assert all(a["to_number"] == mask_phone(principal.mobile) for a in pat["alerts"])
    assert principal.mobile not in str(body)


def test_partners_see_counts_only(app, client, login, session, school, teacher, partner):
    run = start(app, teacher, school, mode="real")
    acknowledge(session, run, person_id=teacher.id, channel="app")

    body = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(partner)).get_json()

    assert set(body) == {"run_id", "mode", "state", "summary", "queue", "acks"}, \
        "runs/partners.py lists what partners see"
    assert body["acks"]["count"] == 1 and "acknowledgements" not in body["acks"]
    assert body["summary"]["acknowledged"] == 1
    assert "Tess" not in str(body) and teacher.mobile not in str(body)


def test_partners_cannot_see_drills_and_outsiders_cannot_see_the_run(app, client, login, make_school, make_person,
                                                                       school, principal, partner):
    run = start(app, principal, school)
    outsider = make_person("teacher", [make_school()], name="Olga Outsider")

    assert client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(partner)).status_code == 404
    assert client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(outsider)).status_code == 404
    assert client.get(f"/api/v1/runs/{run.id}/alerts").status_code == 401


def test_opted_out_and_unreachable_people_are_listed(app, client, login, session, make_person, school, principal,
                                                     teacher):
    nomo = make_person("teacher", [school], name="Nomo Bile", mobile=None)
    session.add(OptOut(number=teacher.mobile, keyword="STOP"))
    session.commit()
    run = start(app, principal, school)

    body = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(principal)).get_json()

    assert body["opted_out"] == [{"kind": "person", "id": teacher.id, "name": "Tess Teacher", "role": "teacher"}]
    assert recipient(body, "Tess Teacher")["opted_out"] is True
    assert {a["channel"]: a["status"] for a in recipient(body, "Tess Teacher")["alerts"]} == \
        {"push": "sent", "sms": "skipped", "voice": "queued"}
    assert body["unreachable"] == [{"kind": "person", "id": nomo.id, "name": "Nomo Bile", "role": "teacher"}]


def test_ack_stats_median_and_p90(app, session, make_person, school, principal):
    teachers = [make_person("teacher", [school]) for _ in range(10)]
    run = start(app, principal, school)
    first = session.scalar(select(Alert.queued_at).where(Alert.run_id == run.id).order_by(Alert.queued_at))
    for n, person in enumerate(teachers, start=1):
        session.add(Acknowledgement(run_id=run.id, person_id=person.id, channel="sms" if n % 2 else "app",
                                    acknowledged_at=first + timedelta(seconds=10 * n)))
    session.commit()

    stats = ack_stats(session, run)

    assert stats["count"] == 10 and stats["expected"] == 11  # the principal is staff too
    assert stats["median_seconds"] == 55.0
    assert stats["p90_seconds"] == 90.0
    assert stats["by_channel"] == {"sms": 5, "app": 5}
    assert [row["seconds"] for row in stats["acknowledgements"]] == [10.0 * n for n in range(1, 11)]


def test_ack_stats_without_acks(app, session, school, principal):
    run = start(app, principal, school)

    stats = ack_stats(session, run)

    assert stats["count"] == 0 and stats["median_seconds"] is None and stats["p90_seconds"] is None


def test_ack_seconds_count_from_the_first_alert(app, session, school, principal, teacher):
    run = start(app, principal, school)
    for alert in session.scalars(select(Alert).where(Alert.run_id == run.id)):
        alert.queued_at -= timedelta(seconds=30)
    session.commit()

    acknowledge(session, run, person_id=teacher.id, channel="app")

    assert 30 <= ack_stats(session, run)["acknowledgements"][0]["seconds"] < 40


def test_school_opt_outs_for_admins_only_with_masked_numbers(app, client, login, session, school, principal,
                                                             teacher, partner):
    session.add_all([OptOut(number=teacher.mobile, keyword="STOP"), OptOut(number=partner.mobile, keyword="QUIT"),
                     OptOut(number="+12125550999", keyword="STOP")])
    session.commit()

    response = client.get(f"/api/v1/schools/{school.id}/opt-outs", headers=login(principal))

    assert response.status_code == 200
    rows = response.get_json()["opt_outs"]
    assert [(r["name"], r["kind"], r["keyword"]) for r in rows] == [("Officer Obi", "partner", "QUIT"),
                                                                    ("Tess Teacher", "person", "STOP")]
    assert rows[1]["number"] == mask_phone(teacher.mobile)
    assert teacher.mobile not in response.get_data(as_text=True)
    assert client.get(f"/api/v1/schools/{school.id}/opt-outs", headers=login(teacher)).status_code == 403
    assert client.get(f"/api/v1/schools/{school.id}/opt-outs", headers=login(partner)).status_code == 403
