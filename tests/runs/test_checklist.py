"""The playbook's checklist during a run: the caller's steps, ticks on the timeline with who and when."""

from __future__ import annotations


def test_each_role_sees_its_own_steps_of_the_run(client, school_setup, start):
    s = school_setup
    run = start(s.login(s.principal), s.school).get_json()

    admin = client.get(f"/api/v1/runs/{run['id']}/checklist", headers=s.login(s.principal)).get_json()
    teacher = client.get(f"/api/v1/runs/{run['id']}/checklist", headers=s.login(s.teacher)).get_json()
    district = client.get(f"/api/v1/runs/{run['id']}/checklist", headers=s.login(s.district)).get_json()

    assert [step["step"] for step in admin["steps"]] == ["Call 911 if police are not already informed."]
    assert [step["role"] for step in teacher["steps"]] == ["teacher"] * 3
    assert "Call 911 if police are not already informed." in [step["step"] for step in district["steps"]]
    assert all(step["done"] is False and step["done_by"] == [] for step in teacher["steps"])


def test_a_tick_is_on_the_timeline_with_who_and_when_and_can_be_undone(client, school_setup, start, pushes):
    s = school_setup
    run = start(s.login(s.principal), s.school).get_json()
    step = client.get(f"/api/v1/runs/{run['id']}/checklist", headers=s.login(s.principal)).get_json()["steps"][0]

    response = client.post(f"/api/v1/runs/{run['id']}/checklist", json={"step": step["index"]},
                           headers=s.login(s.principal))

    assert response.status_code == 200
    ticked = response.get_json()["steps"][0]
    assert ticked["done"] is True and ticked["done_at"]
    assert [who["name"] for who in ticked["done_by"]] == ["Pat Principal"]
    events = client.get(f"/api/v1/runs/{run['id']}/timeline", headers=s.login(s.principal)).get_json()["events"]
    tick = events[-1]
    assert tick["type"] == "checklist.ticked" and tick["actor"]["name"] == "Pat Principal" and tick["at"]
    assert tick["payload"] == {"step": step["index"], "text": "Call 911 if police are not already informed.",
                               "role": "school_admin", "done": True}
    assert "checklist.ticked" in pushes.names()

    undone = client.post(f"/api/v1/runs/{run['id']}/checklist", json={"step": step["index"], "done": False},
                         headers=s.login(s.principal)).get_json()["steps"][0]
    assert undone["done"] is False and undone["done_by"] == []


def test_ticks_are_per_person(client, school_setup, start):
    s = school_setup
    run = start(s.login(s.principal), s.school).get_json()
    client.post(f"/api/v1/runs/{run['id']}/checklist", json={"step": 0}, headers=s.login(s.teacher))

    other = client.get(f"/api/v1/runs/{run['id']}/checklist", headers=s.login(s.teacher2)).get_json()["steps"][0]

    assert other["done"] is False and [who["name"] for who in other["done_by"]] == ["Tess Teacher"]


def test_bad_ticks_are_clear_errors(client, school_setup, start):
    s = school_setup
    run = start(s.login(s.principal), s.school).get_json()
    url = f"/api/v1/runs/{run['id']}/checklist"

    assert client.post(url, json={"step": 99}, headers=s.login(s.teacher)).status_code == 422
    assert client.post(url, json={"step": "0"}, headers=s.login(s.teacher)).status_code == 422
    forbidden = client.post(url, json={"step": 3}, headers=s.login(s.teacher))  # the principal's step
    assert forbidden.status_code == 403 and forbidden.get_json()["code"] == "forbidden"
    assert client.get(url, headers=s.login(s.partner)).status_code in (403, 404)
    assert client.get(url, headers=s.login(s.outsider)).status_code == 404
    client.post(f"/api/v1/runs/{run['id']}/all-clear", json={}, headers=s.login(s.principal))
    assert client.post(url, json={"step": 0}, headers=s.login(s.teacher)).status_code == 409
