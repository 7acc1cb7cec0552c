"""Two taps at once: the same Idempotency-Key, or two starts for one school, never make two runs."""

import threading

from sqlalchemy import func, select

from emergency.runs.models import Run


def _race(app, requests):
    """Fire each request from its own thread at the same moment; returns the responses."""
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def worker(i, kwargs):
        client = app.test_client()
        with app.app_context():
            barrier.wait()
            results[i] = client.post("/api/v1/runs", **kwargs)

    threads = [threading.Thread(target=worker, args=(i, kw)) for i, kw in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_double_tap_with_one_idempotency_key_creates_one_run(app, school_setup, session):
    headers = {**school_setup.login(school_setup.teacher), "Idempotency-Key": "double-tap"}
    body = {"school_id": school_setup.school.id, "playbook": "lockdown", "mode": "real", "confirm": True}
    responses = _race(app, [dict(json=body, headers=headers)] * 4)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 201], [r.get_json() for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert session.scalar(select(func.count()).select_from(Run)) == 1


def test_two_people_starting_at_once_make_one_active_run(app, school_setup, session):
    body = {"school_id": school_setup.school.id, "playbook": "lockdown", "mode": "real", "confirm": True}
    first = school_setup.login(school_setup.teacher)
    second = school_setup.login(school_setup.teacher2)
    responses = _race(app, [dict(json=body, headers=first), dict(json=body, headers=second)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409], [r.get_json() for r in responses]
    conflict = [r for r in responses if r.status_code == 409][0].get_json()
    assert conflict["active_run_id"] == [r for r in responses if r.status_code == 201][0].get_json()["id"]
    assert session.scalar(select(func.count()).select_from(Run)) == 1


def test_a_retry_that_finds_its_own_run_already_active_returns_it(client, school_setup, monkeypatch):
    """The retry looked its key up just before the first tap committed, then found the run active."""
    from emergency.runs import service

    headers = {**school_setup.login(school_setup.teacher), "Idempotency-Key": "double-tap"}
    body = {"school_id": school_setup.school.id, "playbook": "lockdown", "mode": "real", "confirm": True}
    first = client.post("/api/v1/runs", json=body, headers=headers)
    real_lookup, calls = service._existing_for_key, []

    def lookup_too_early(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_lookup(*args)

    monkeypatch.setattr(service, "_existing_for_key", lookup_too_early)
    retry = client.post("/api/v1/runs", json=body, headers=headers)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.get_json()["id"] == first.get_json()["id"]
