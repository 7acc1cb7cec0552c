"""Starting, changing, updating and ending runs through the API: the state machine and permissions."""

from sqlalchemy import func, select

from emergency.runs.models import Run


def test_principal_starts_a_lockdown_drill(client, school_setup, start):
    headers = school_setup.login(school_setup.principal)
    response = start(headers, school_setup.school)
    assert response.status_code == 201
    run = response.get_json()
    assert run["state"] == "active"
    assert run["mode"] == "drill"
    assert run["directive"] == "Locks, lights, out of sight."
    assert run["started_by"]["name"] == "Pat Principal"
    assert run["playbook"]["version"]


def test_teacher_cannot_start_a_drill_but_can_start_a_real_lockdown(client, school_setup, start):
    headers = school_setup.login(school_setup.teacher)
    refused = start(headers, school_setup.school, mode="drill")
    assert refused.status_code == 403
    assert "cannot start a drill" in refused.get_json()["message"]
    assert start(headers, school_setup.school, mode="real").status_code == 201


def test_real_start_needs_confirmation(client, school_setup, start):
    headers = school_setup.login(school_setup.teacher)
    response = start(headers, school_setup.school, mode="real", confirm=False)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"confirm": ["required for a real emergency"]}


def test_partner_cannot_start_runs(client, school_setup, start):
    headers = school_setup.login(school_setup.partner)
    assert start(headers, school_setup.school, mode="real").status_code == 403


def test_school_outside_scope_is_not_found(client, school_setup, start):
    headers = school_setup.login(school_setup.outsider)
    assert start(headers, school_setup.school, mode="real").status_code == 404


def test_unknown_playbook_and_unknown_field_are_refused(client, school_setup, start):
    headers = school_setup.login(school_setup.principal)
    unknown = start(headers, school_setup.school, playbook="nope")
    assert unknown.status_code == 422 and "playbook" in unknown.get_json()["errors"]
    extra = start(headers, school_setup.school, colour="red")
    assert extra.status_code == 422 and extra.get_json()["errors"] == {"colour": ["Unknown field."]}


def test_drill_while_a_run_is_active_is_a_conflict_naming_it(client, school_setup, start):
    headers = school_setup.login(school_setup.principal)
    first = start(headers, school_setup.school).get_json()
    second = start(headers, school_setup.school, playbook="secure")
    assert second.status_code == 409
    assert second.get_json()["active_run_id"] == first["id"]


def test_real_run_supersedes_an_active_drill(client, school_setup, start, pushes):
    admin = school_setup.login(school_setup.principal)
    drill = start(admin, school_setup.school).get_json()
    real = start(school_setup.login(school_setup.teacher), school_setup.school, mode="real")
    assert real.status_code == 201
    old = client.get(f"/api/v1/runs/{drill['id']}", headers=admin).get_json()
    assert old["state"] == "superseded"
    assert old["end_reason"] == "superseded"
    assert old["superseded_by_id"] == real.get_json()["id"]
    ended = [p for p in pushes.pushes if p.name == "run.ended" and p.data["run_id"] == drill["id"]]
    assert ended and ended[0].data["payload"]["reason"] == "superseded"
    from emergency.alerts.models import Alert
    from emergency.db import db

    told = db.session.query(Alert).filter_by(run_id=drill["id"], occasion="superseded", channel="sms").all()
    assert told, "everyone who got the drill is told it is over"
    assert all(a.body.startswith("DRILL - THIS IS A DRILL.") and "REAL emergency has started" in a.body
               for a in told)
    assert not any("in error" in a.body or "ALL CLEAR" in a.body.upper() for a in told)


def test_second_real_run_is_a_conflict(client, school_setup, start):
    teacher = school_setup.login(school_setup.teacher)
    start(teacher, school_setup.school, mode="real")
    assert start(teacher, school_setup.school, mode="real", playbook="secure").status_code == 409


def test_change_of_action_keeps_the_timeline(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run = start(admin, school_setup.school, playbook="secure").get_json()
    changed = client.post(f"/api/v1/runs/{run['id']}/action", json={"playbook": "lockdown"}, headers=admin)
    assert changed.status_code == 200
    body = changed.get_json()
    assert body["action"] == "lockdown" and body["id"] == run["id"]
    events = client.get(f"/api/v1/runs/{run['id']}/timeline", headers=admin).get_json()["events"]
    assert [e["type"] for e in events][:1] == ["run.started"]
    change = [e for e in events if e["type"] == "run.action_changed"][0]
    assert change["payload"]["from"]["action"] == "secure"
    assert change["payload"]["directive"] == "Locks, lights, out of sight."


def test_update_all_clear_and_refusals_after_the_end(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run_id = start(admin, school_setup.school).get_json()["id"]
    assert client.post(f"/api/v1/runs/{run_id}/updates", json={"message": "Police on site"},
                       headers=admin).status_code == 200
    done = client.post(f"/api/v1/runs/{run_id}/all-clear", json={"message": "All clear"}, headers=admin)
    assert done.status_code == 200 and done.get_json()["state"] == "ended"
    for path, body in (("updates", {"message": "x"}), ("all-clear", {}), ("cancel", {"reason": "x"}),
                       ("action", {"playbook": "secure"})):
        refused = client.post(f"/api/v1/runs/{run_id}/{path}", json=body, headers=admin)
        assert refused.status_code == 409, path
        assert "already ended" in refused.get_json()["message"]


def test_teacher_cannot_give_the_all_clear_but_can_cancel_their_own_false_alarm(client, school_setup, start):
    teacher = school_setup.login(school_setup.teacher)
    run_id = start(teacher, school_setup.school, mode="real").get_json()["id"]
    assert client.post(f"/api/v1/runs/{run_id}/all-clear", json={}, headers=teacher).status_code == 403
    other = school_setup.login(school_setup.teacher2)
    assert client.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "x"}, headers=other).status_code == 403
    cancelled = client.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "pocket dial"}, headers=teacher)
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"


def test_cancel_needs_a_reason(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run_id = start(admin, school_setup.school).get_json()["id"]
    response = client.post(f"/api/v1/runs/{run_id}/cancel", json={}, headers=admin)
    assert response.status_code == 422 and "reason" in response.get_json()["errors"]


def test_partner_sees_real_runs_only(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    drill_id = start(admin, school_setup.school).get_json()["id"]
    partner = school_setup.login(school_setup.partner)
    assert client.get(f"/api/v1/runs/{drill_id}", headers=partner).status_code == 404
    assert client.get("/api/v1/runs", headers=partner).get_json()["runs"] == []
    real_id = start(school_setup.login(school_setup.teacher), school_setup.school, mode="real").get_json()["id"]
    listed = client.get("/api/v1/runs", headers=partner).get_json()["runs"]
    assert [r["id"] for r in listed] == [real_id]
    assert client.get(f"/api/v1/runs/{real_id}/timeline", headers=partner).status_code == 200


def test_list_filters_and_paginates(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    ids = []
    for _ in range(3):
        run_id = start(admin, school_setup.school).get_json()["id"]
        client.post(f"/api/v1/runs/{run_id}/all-clear", json={}, headers=admin)
        ids.append(run_id)
    page = client.get(f"/api/v1/runs?school_id={school_setup.school.id}&state=ended&per_page=2",
                      headers=admin).get_json()
    assert page["meta"] == {"total": 3, "page": 1, "per_page": 2, "pages": 2}
    assert [r["id"] for r in page["runs"]] == ids[::-1][:2]
    assert client.get("/api/v1/runs?mode=real", headers=admin).get_json()["meta"]["total"] == 0
    assert client.get("/api/v1/runs?start=2999-01-01T00:00:00Z", headers=admin).get_json()["runs"] == []
    assert client.get("/api/v1/runs?state=bogus", headers=admin).status_code == 422


def test_timeline_after_seq_returns_the_rest_in_order(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run_id = start(admin, school_setup.school).get_json()["id"]
    for n in range(3):
        client.post(f"/api/v1/runs/{run_id}/updates", json={"message": f"update {n}"}, headers=admin)
    events = client.get(f"/api/v1/runs/{run_id}/timeline", headers=admin).get_json()["events"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    rest = client.get(f"/api/v1/runs/{run_id}/timeline?after_seq={seqs[1]}", headers=admin).get_json()["events"]
    assert [e["seq"] for e in rest] == seqs[2:]
    assert events[0]["at"].endswith("Z") and len(events[0]["at"]) == len("2026-01-01T00:00:00.000Z")


def test_run_stores_the_exact_playbook_version(client, school_setup, start, session, app):
    admin = school_setup.login(school_setup.principal)
    run_id = start(admin, school_setup.school).get_json()["id"]
    run = session.get(Run, run_id)
    playbook = app.extensions["playbooks"].get("lockdown")
    assert run.playbook_version == playbook.version
    assert run.playbook == playbook.to_dict()


def test_idempotency_key_returns_the_same_run(client, school_setup, session):
    admin = school_setup.login(school_setup.principal)
    body = {"school_id": school_setup.school.id, "playbook": "lockdown", "mode": "drill"}
    headers = {**admin, "Idempotency-Key": "tap-1"}
    first = client.post("/api/v1/runs", json=body, headers=headers)
    again = client.post("/api/v1/runs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert session.scalar(select(func.count()).select_from(Run)) == 1


def test_run_says_what_the_caller_has_done(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run_id = start(admin, school_setup.school).get_json()["id"]
    teacher = school_setup.login(school_setup.teacher)
    before = client.get(f"/api/v1/runs/{run_id}", headers=teacher).get_json()["me"]
    assert before == {"acknowledged_at": None, "ack_channel": None, "status": None, "last_checkin": None}
    assert client.post(f"/api/v1/runs/{run_id}/ack", headers=teacher).status_code == 200
    body = {"room_id": school_setup.room.id, "status": "all_accounted", "present": 20}
    assert client.post(f"/api/v1/runs/{run_id}/checkins", json=body, headers=teacher).status_code == 201
    after = client.get(f"/api/v1/runs/{run_id}", headers=teacher).get_json()["me"]
    assert after["acknowledged_at"] and after["ack_channel"] == "app"
    assert after["last_checkin"]["room_id"] == school_setup.room.id
    assert client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()["me"]["acknowledged_at"] is None


def test_change_of_action_to_an_unknown_variant_is_422_and_sends_nothing(client, school_setup, start, session):
    from emergency.alerts.models import Alert

    admin = school_setup.login(school_setup.principal)
    run = start(admin, school_setup.school, playbook="shelter").get_json()
    before = session.scalar(select(func.count()).select_from(Alert))

    refused = client.post(f"/api/v1/runs/{run['id']}/action", json={"playbook": "shelter", "variant": "volcano"},
                          headers=admin)

    assert refused.status_code == 422
    assert "variant" in refused.get_json()["errors"]
    assert session.scalar(select(func.count()).select_from(Alert)) == before


def test_change_to_the_action_already_in_force_changes_and_sends_nothing(client, school_setup, start, session):
    from emergency.alerts.models import Alert

    admin = school_setup.login(school_setup.principal)
    run = start(admin, school_setup.school, playbook="lockdown").get_json()
    before = session.scalar(select(func.count()).select_from(Alert))

    same = client.post(f"/api/v1/runs/{run['id']}/action", json={"playbook": "lockdown"}, headers=admin)

    assert same.status_code == 200
    assert same.get_json()["last_seq"] == run["last_seq"]
    assert session.scalar(select(func.count()).select_from(Alert)) == before
    events = client.get(f"/api/v1/runs/{run['id']}/timeline", headers=admin).get_json()["events"]
    assert "run.action_changed" not in [e["type"] for e in events]


def test_change_of_variant_is_a_change_and_is_recorded(client, school_setup, start):
    admin = school_setup.login(school_setup.principal)
    run = start(admin, school_setup.school, playbook="shelter").get_json()
    variant = next(iter(client.get("/api/v1/playbooks/shelter", headers=admin).get_json()["variants"]))

    changed = client.post(f"/api/v1/runs/{run['id']}/action", json={"playbook": "shelter", "variant": variant},
                          headers=admin)

    assert changed.status_code == 200
    assert changed.get_json()["facts"]["variant"] == variant
    assert changed.get_json()["last_seq"] > run["last_seq"]
