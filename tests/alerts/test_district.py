"""Delivery at district scale: claim order across runs, dispatcher liveness, sender pools, queue position."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from emergency.alerts.dispatcher import PACE, Dispatcher
from emergency.alerts.escalation import run_due_escalations
from emergency.alerts.models import DRILL_LANE, QUEUED, REAL_LANE, SENDING, Alert, DispatcherHeartbeat
from emergency.db import db
from emergency.timeutil import utcnow
from tests.alerts.helpers import RecordingBudget, fake_twilio_settings, start

POOL = ["+15005550006", "+15005550007", "+15005550008"]


@pytest.fixture
def app_overrides(fake_twilio):
    return {**fake_twilio_settings(fake_twilio), "TWILIO_FROM_NUMBER": "", "TWILIO_FROM_NUMBERS": ",".join(POOL)}


@pytest.fixture
def staffed_school(make_school, make_person, make_partner):
    def make(name: str, teachers: int = 6):
        school = make_school(name=name)
        admin = make_person("school_admin", [school], name=f"Admin of {name}")
        staff = [make_person("teacher", [school], name=f"Teacher {n} of {name}") for n in range(teachers)]
        partner = make_partner([school], name=f"Officer of {name}")
        return school, admin, staff, partner

    return make


def _dispatcher(app) -> Dispatcher:
    return app.extensions["dispatcher"]


def _runs_in_claim_order(claimed) -> list[int]:
    return [row.run_id for row in claimed]


def test_a_real_run_is_claimed_before_every_drill_alert_across_schools(app, session, staffed_school):
    north, north_admin, _, _ = staffed_school("North Elementary")
    south, south_admin, _, _ = staffed_school("South Elementary")
    west, west_admin, west_staff, west_partner = staffed_school("West Middle School")
    drills = [start(app, north_admin, north), start(app, south_admin, south)]
    real = start(app, west_admin, west, mode="real")
    db.session.commit()
    claimed = _dispatcher(app).claim("sms", limit=1000)
    order = _runs_in_claim_order(claimed)
    real_count = order.count(real.id)
    assert real_count == 1 + 1 + len(west_staff), "every real text is claimed"
    assert order[:real_count] == [real.id] * real_count, "the real run's texts all go before any drill text"
    assert {r.id for r in drills} == set(order[real_count:])
    rows = {a.id: a for a in session.scalars(select(Alert).where(Alert.run_id == real.id))}
    first_two = [rows[c.id] for c in claimed[:2]]
    assert {a.partner_id or a.person_id for a in first_two} == {west_partner.id, west_admin.id}, \
        "partners and admins of the real run first"
    assert {a.lane for a in rows.values()} == {REAL_LANE}


def test_drills_at_two_schools_are_interleaved_round_robin(app, session, staffed_school):
    north, north_admin, north_staff, _ = staffed_school("North Elementary", teachers=8)
    south, south_admin, south_staff, _ = staffed_school("South Elementary", teachers=8)
    first = start(app, north_admin, north)
    second = start(app, south_admin, south)
    db.session.commit()
    claimed = _dispatcher(app).claim("sms", limit=1000)
    order = _runs_in_claim_order(claimed)
    # Each round has one text of each school: the second school hears at once, not after the first.
    assert order[:6] == [first.id, second.id] * 3
    second_admin_alert = session.scalar(select(Alert.id).where(Alert.run_id == second.id, Alert.channel == "sms",
                                                               Alert.person_id == south_admin.id))
    assert [c.id for c in claimed].index(second_admin_alert) <= 1, "the second principal hears in the first round"
    assert {a.lane for a in session.scalars(select(Alert))} == {DRILL_LANE}


def test_a_run_started_later_joins_the_current_round(app, session, staffed_school):
    north, north_admin, _, _ = staffed_school("North Elementary", teachers=10)
    south, south_admin, _, _ = staffed_school("South Elementary", teachers=3)
    first = start(app, north_admin, north).id
    db.session.commit()
    _dispatcher(app).claim("sms", limit=6)  # the first school's first six rounds are under way
    second = start(app, south_admin, south).id
    db.session.commit()
    turns = {run_id: sorted(session.scalars(select(Alert.turn).where(Alert.run_id == run_id,
                                                                     Alert.status == QUEUED, Alert.channel == "sms")))
             for run_id in (first, second)}
    session.rollback()  # on SQLite an open transaction holds the lock the dispatcher needs
    assert turns[second][0] == turns[first][0] == 6, "neither ahead of the backlog nor behind it"
    order = _runs_in_claim_order(_dispatcher(app).claim("sms", limit=4))
    assert order == [first, second, first, second]


def test_a_real_escalation_call_is_claimed_before_drill_calls(app, session, staffed_school):
    north, north_admin, _, _ = staffed_school("North Elementary")
    west, west_admin, _, west_partner = staffed_school("West Middle School")
    drill = start(app, north_admin, north)
    real = start(app, west_admin, west, mode="real")
    db.session.commit()
    _dispatcher(app).drain()
    drill_calls = [Alert(run_id=drill.id, event_seq=1, occasion="start", person_id=north_admin.id,
                         recipient_name="x", recipient_role="teacher", to_number=f"+1914555{n:04d}",
                         channel="voice", body="drill call", priority=0, lane=DRILL_LANE, turn=0, status=QUEUED)
                   for n in range(5)]
    session.add_all(drill_calls)
    # The partner did not acknowledge: the escalation of the real run is a voice call.
    session.execute(update(Alert).where(Alert.run_id == real.id, Alert.escalate_at.is_not(None))
                    .values(escalate_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert run_due_escalations(session) >= 1
    claimed = _dispatcher(app).claim("voice", limit=100)
    assert claimed[0].run_id == real.id
    assert {c.run_id for c in claimed[-5:]} == {drill.id}


def test_a_dead_dispatchers_claims_are_taken_over_once_it_stops_beating(app, session, staffed_school):
    north, north_admin, staff, _ = staffed_school("North Elementary")
    start(app, north_admin, north)
    db.session.commit()
    dead = Dispatcher(_dispatcher(app).sessions, _dispatcher(app).provider, _dispatcher(app).settings)
    taken = {c.id for c in dead.claim("sms", limit=3)}  # then the process is killed with -9
    survivor = _dispatcher(app)
    assert not taken & {c.id for c in survivor.claim("sms", limit=100)}, "a live dispatcher's claims are its own"
    lease = session.scalar(select(Alert.deadline_at).where(Alert.id.in_(taken)).limit(1))
    session.rollback()
    # The dead one's heartbeat ages past DISPATCHER_LIVENESS_SECONDS, long before its lease would end.
    session.execute(update(DispatcherHeartbeat).where(DispatcherHeartbeat.id == dead.identity)
                    .values(seen_at=utcnow() - timedelta(seconds=survivor.settings.liveness_seconds + 1)))
    session.commit()
    assert lease > utcnow() + timedelta(seconds=10)
    reclaimed = survivor.claim("sms", limit=100)
    assert {c.id for c in reclaimed} == taken
    rows = session.scalars(select(Alert).where(Alert.id.in_(taken)).execution_options(populate_existing=True))
    assert {(a.status, a.claimed_by, a.attempts) for a in rows} == {(SENDING, survivor.identity, 2)}


def test_a_cleanly_stopped_dispatcher_unregisters(app, session, staffed_school):
    dispatcher = _dispatcher(app)
    identity = dispatcher.heartbeat()
    assert session.get(DispatcherHeartbeat, identity) is not None
    session.rollback()
    dispatcher.unregister()
    assert session.get(DispatcherHeartbeat, identity, populate_existing=True) is None
    assert dispatcher.identity is None


def test_the_local_budget_shares_the_rate_among_live_dispatchers(app, session):
    first = _dispatcher(app)
    second = Dispatcher(first.sessions, first.provider, first.settings)
    first.heartbeat()
    second.heartbeat()
    first._live = (0.0, 1)  # count again now
    assert first.live_dispatchers() == 2


def test_each_recipient_always_hears_from_the_same_pool_number(app, client, login, session, staffed_school,
                                                               fake_twilio):
    school, admin, staff, partner = staffed_school("North Elementary", teachers=20)
    run = start(app, admin, school)
    db.session.commit()
    _dispatcher(app).drain()
    cancelled = client.post(f"/api/v1/runs/{run.id}/cancel", headers=login(admin), json={"reason": "test"})
    assert cancelled.status_code == 200, cancelled.get_json()
    session.commit()
    _dispatcher(app).drain()
    assert len(fake_twilio.messages) == 2 * (1 + len(staff))
    senders: dict[str, set[str]] = {}
    for message in fake_twilio.messages:
        senders.setdefault(message["to"], set()).add(message["from"])
    assert all(len(numbers) == 1 for numbers in senders.values()), "replies thread: one sender per recipient"
    used = Counter(next(iter(numbers)) for numbers in senders.values())
    assert set(used) == set(POOL), "the pool spreads the load over every number"


def test_each_pool_number_has_its_own_sms_budget(app, staffed_school):
    dispatcher = _dispatcher(app)
    dispatcher.budget = RecordingBudget()
    keys = dispatcher.budget.taken
    dispatcher.settings.sms_per_second = 2.0
    school, admin, staff, _ = staffed_school("North Elementary", teachers=12)
    start(app, admin, school)
    db.session.commit()
    dispatcher.drain()
    assert {key for key, _ in keys} == {f"sms:{number}" for number in POOL}
    assert {rate for _, rate in keys} == {2.0 * PACE}, "each number paced a little under its own rate"
    assert dispatcher.settings.rate("sms") == 6.0, "the deployment's rate is every number's together"


def test_a_reply_to_any_pool_number_is_handled(app, client, login, session, staffed_school, fake_twilio, signed):
    school, admin, staff, _ = staffed_school("North Elementary")
    run = start(app, admin, school)
    db.session.commit()
    _dispatcher(app).drain()
    teacher = staff[0]
    their_sender = next(m["from"] for m in fake_twilio.messages if m["to"] == teacher.mobile)
    other = next(n for n in POOL if n != their_sender)
    response = signed("/webhooks/twilio/sms", {"From": teacher.mobile, "To": other, "Body": "OK",
                                               "MessageSid": "SMreply1"})
    assert response.status_code == 200 and "Confirmed" in response.get_data(as_text=True)
    acks = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(admin)).get_json()
    assert acks["acks"]["count"] == 1


def test_run_alerts_show_the_runs_place_in_the_queue(app, client, login, session, staffed_school):
    dispatcher = _dispatcher(app)
    dispatcher.settings.sms_per_second = 2.0  # three pool numbers: 6 texts a second together
    north, north_admin, north_staff, _ = staffed_school("North Elementary")
    west, west_admin, west_staff, _ = staffed_school("West Middle School")
    drill = start(app, north_admin, north)
    real = start(app, west_admin, west, mode="real")
    db.session.commit()
    drill_view = client.get(f"/api/v1/runs/{drill.id}/alerts", headers=login(north_admin)).get_json()
    real_view = client.get(f"/api/v1/runs/{real.id}/alerts", headers=login(west_admin)).get_json()
    real_texts = 2 + len(west_staff)
    drill_texts = 1 + len(north_staff)
    assert real_view["queue"]["sms"] == {"waiting": real_texts, "ahead": 0, "eta_seconds": round(real_texts / 6, 1)}
    assert drill_view["queue"]["sms"] == {"waiting": drill_texts, "ahead": real_texts,
                                          "eta_seconds": round((drill_texts + real_texts) / 6, 1)}
    dispatcher.drain()
    done = client.get(f"/api/v1/runs/{drill.id}/alerts", headers=login(north_admin)).get_json()
    assert done["queue"]["sms"] == {"waiting": 0, "ahead": 0, "eta_seconds": 0.0}


def test_claims_refill_the_in_flight_window_by_halves_and_skip_a_channel_just_found_empty(app):
    dispatcher = _dispatcher(app)
    dispatcher.settings.sms_per_second = 100.0  # each of the three pool numbers
    dispatcher._live = (float("inf"), 1)  # one live dispatcher, never recounted
    limit = dispatcher.in_flight_limit("sms")
    assert limit > 10
    assert dispatcher.claim_room("sms", 0, since_empty=60) == min(limit, dispatcher.batch_size("sms"))
    assert dispatcher.claim_room("sms", limit - 1, since_empty=60) == 0, "one free slot is not worth a round trip"
    assert dispatcher.claim_room("sms", limit - limit // 2, since_empty=60) == limit // 2
    assert dispatcher.claim_room("sms", limit, since_empty=60) == 0
    assert dispatcher.claim_room("voice", 0, since_empty=0.1) == 0, "found empty a moment ago: not asked again yet"
    assert dispatcher.claim_room("voice", 0, since_empty=0.3) > 0


def test_a_send_is_recorded_as_sent_with_its_sid_and_a_callback_that_came_first_is_kept(app, session,
                                                                                        staffed_school):
    school, admin, _, _ = staffed_school("North Elementary")
    start(app, admin, school)
    db.session.commit()
    dispatcher = _dispatcher(app)
    first, second = dispatcher.claim("sms", limit=2)
    dispatcher.accepted.note(first.id, "SM-first", "queued")
    dispatcher.record_accepted()
    # The status callback of the second beat the dispatcher: "delivered" stays, the sid is kept.
    session.execute(update(Alert).where(Alert.id == second.id).values(status="delivered", provider_sid="SM-second",
                                                                      delivered_at=utcnow()))
    session.commit()
    dispatcher.accepted.note(second.id, "SM-second", "queued")
    dispatcher.record_accepted()
    rows = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_([first.id, second.id]))
                                             .execution_options(populate_existing=True))}
    sent = rows[first.id]
    assert (sent.status, sent.provider_status, sent.provider_sid, sent.deadline_at) == ("sent", "queued", "SM-first",
                                                                                        None)
    assert sent.sent_at is not None and sent.sent_at.tzinfo is not None
    assert (rows[second.id].status, rows[second.id].provider_sid) == ("delivered", "SM-second")
    assert rows[second.id].sent_at is not None


def test_the_in_flight_window_covers_the_time_a_send_takes_up_to_a_bound(app):
    from emergency.alerts.dispatcher import CLAIM_AHEAD_SECONDS, MAX_CLAIM_AHEAD_SECONDS

    dispatcher = _dispatcher(app)
    dispatcher.settings.sms_per_second = 2.0  # three pool numbers: 6 texts a second
    dispatcher.settings.concurrency = 100
    dispatcher._live = (float("inf"), 2)  # two live dispatchers: 3 a second each
    dispatcher.send_seconds["sms"] = 0.05
    assert dispatcher.in_flight_limit("sms") == math.ceil(3 * CLAIM_AHEAD_SECONDS) + 1
    dispatcher.send_seconds["sms"] = 0.5  # a slow provider or a busy machine: one second of sends in flight
    assert dispatcher.in_flight_limit("sms") == 3 * 1 + 1
    dispatcher.send_seconds["sms"] = 15.0  # timeouts: never more than the bound ahead of a real run
    assert dispatcher.in_flight_limit("sms") == math.ceil(3 * MAX_CLAIM_AHEAD_SECONDS) + 1


def test_a_running_dispatcher_asks_for_an_empty_channel_only_after_the_pause_and_records_only_after_sends(
        app, session, staffed_school, monkeypatch):
    """Nobody has push on: during the SMS fan-out the push channel is asked at most once per
    EMPTY_CLAIM_PAUSE (each claim is a write transaction); accepted sends are recorded together, and
    an idle dispatcher records nothing."""
    from emergency.alerts import dispatcher as dispatching

    school, admin, _, _ = staffed_school("North Elementary", teachers=12)
    run = start(app, admin, school)
    db.session.commit()
    dispatcher = _dispatcher(app)
    claims: Counter = Counter()
    flushes = []
    claim = dispatcher.claim
    monkeypatch.setattr(dispatcher, "claim", lambda channel, limit=None: claims.update([channel]) or
                        claim(channel, limit))
    record = dispatcher.record_accepted
    monkeypatch.setattr(dispatcher, "record_accepted", lambda: flushes.append(1) or record())
    thread = threading.Thread(target=dispatcher.run_forever, kwargs={"idle_sleep": 0.01}, daemon=True)
    began = time.monotonic()
    thread.start()
    try:
        deadline = began + 20
        while time.monotonic() < deadline and session.scalar(
                select(func.count()).select_from(Alert).where(Alert.run_id == run.id, Alert.channel == "sms",
                                                              Alert.status.in_((QUEUED, SENDING)))):
            session.rollback()
            time.sleep(0.05)
        session.rollback()  # no read transaction left open: on SQLite it would hold up the dispatcher's writes
        time.sleep(0.3)  # the last sends are recorded
        recorded_when_sent = len(flushes)
        time.sleep(0.5)  # idle passes
        recorded_while_idle, elapsed = len(flushes) - recorded_when_sent, time.monotonic() - began
    finally:
        dispatcher.stop()  # (a stop flushes once more, whatever was noted)
        thread.join(10)
    assert claims["sms"] >= 1
    assert 1 <= claims["push"] <= elapsed / dispatching.EMPTY_CLAIM_PAUSE + 2, claims
    texts = session.scalar(select(func.count()).select_from(Alert).where(Alert.run_id == run.id,
                                                                          Alert.channel == "sms"))
    assert 1 <= recorded_when_sent < texts, "the texts' answers are recorded together, not one by one"
    assert recorded_while_idle == 0, "nothing finished, so there was nothing to record"
