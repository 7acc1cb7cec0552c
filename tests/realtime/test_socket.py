"""Live push: token auth at connect, scoping by school, partners only for real runs, no contacts or names."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import socketio as socketio_client

from tests.served import ServedThread


def _token(headers):
    return headers["Authorization"].split(" ", 1)[1]


def _client(app, headers):
    """A phone on Flask-SocketIO's test client; what it received includes every push already published
    (the publisher emits from a background task of its own)."""
    phone = app.extensions["socketio"].test_client(app, auth={"token": _token(headers)})
    received = phone.get_received

    def get_received(namespace=None):
        assert app.extensions["socket_publisher"].wait_until_sent()
        return received(namespace)

    phone.get_received = get_received
    return phone


def _received(client, name):
    return [m["args"][0] for m in client.get_received() if m["name"] == name]


def _start(client, headers, school, mode="drill", playbook="lockdown"):
    body = {"school_id": school.id, "playbook": playbook, "mode": mode, "confirm": True}
    response = client.post("/api/v1/runs", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def people(make_school, make_person, make_partner, login):
    school = make_school(name="Port Chester Middle School")
    other = make_school(name="Elsewhere")
    return {
        "school": school, "other": other,
        "principal": login(make_person("school_admin", [school])),
        "teacher": login(make_person("teacher", [school])),
        "outsider": login(make_person("teacher", [other])),
        "district": login(make_person("district_admin", [])),
        "partner": login(make_partner([school])),
    }


def test_bad_token_is_refused_at_connect(app):
    client = app.extensions["socketio"].test_client(app, auth={"token": "not-a-token"})
    assert not client.is_connected()
    no_auth = app.extensions["socketio"].test_client(app)
    assert not no_auth.is_connected()


def test_expired_token_is_refused_at_connect(app, people, session):
    from datetime import timedelta

    from emergency.accounts.models import AuthToken
    from emergency.timeutil import utcnow

    for token in session.query(AuthToken):
        token.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert not _client(app, people["teacher"]).is_connected()


def test_teacher_receives_run_started_with_the_directive(app, client, people):
    teacher = _client(app, people["teacher"])
    outsider = _client(app, people["outsider"])
    district = _client(app, people["district"])
    run = _start(client, people["principal"], people["school"])
    started = _received(teacher, "run.started")
    assert started and started[0]["run_id"] == run["id"]
    assert started[0]["payload"]["directive"] == "Locks, lights, out of sight."
    assert started[0]["seq"] == 1
    assert _received(outsider, "run.started") == []
    assert [e["run_id"] for e in _received(district, "run.started")] == [run["id"]]


def test_partner_gets_nothing_for_a_drill_but_gets_the_real_run_that_supersedes_it(app, client, people):
    partner = _client(app, people["partner"])
    assert partner.is_connected()
    drill = _start(client, people["principal"], people["school"])
    assert partner.get_received() == []
    real = _start(client, people["teacher"], people["school"], mode="real")
    names = [m["name"] for m in partner.get_received()]
    assert "run.started" in names
    assert all(m["args"][0]["run_id"] == real["id"] for m in partner.get_received()
               if m["name"] == "run.started")
    assert drill["id"] != real["id"]


def test_partner_events_carry_no_staff_phone_numbers(app, client, people, make_person):
    school = people["school"]
    make_person("teacher", [school], mobile=None, name="No Phone")  # makes an alert.unreachable event
    partner = _client(app, people["partner"])
    _start(client, people["teacher"], school, mode="real")
    text = repr(partner.get_received())
    assert "+1212" not in text
    assert "'mobile'" not in text and "'to_number'" not in text


def test_who_could_not_be_reached_goes_to_the_admins_not_to_every_phone(app, client, people, make_person):
    """The school's admins act on it; teachers read it in the timeline, not as a frame on every phone."""
    make_person("teacher", [people["school"]], mobile=None, name="No Phone")  # makes an alert.unreachable event
    teacher, principal = _client(app, people["teacher"]), _client(app, people["principal"])
    run = _start(client, people["principal"], people["school"])
    [unreachable] = _received(principal, "alert.unreachable")
    assert unreachable["payload"]["recipients"] == [{"name": "No Phone", "role": "teacher"}]
    assert _received(teacher, "run.started") and not _received(teacher, "alert.unreachable")
    timeline = client.get(f"/api/v1/runs/{run['id']}/timeline", headers=people["teacher"]).get_json()
    assert "alert.unreachable" in [e["type"] for e in timeline["events"]]


def test_all_clear_reaches_everyone(app, client, people):
    teacher = _client(app, people["teacher"])
    partner = _client(app, people["partner"])
    run = _start(client, people["teacher"], people["school"], mode="real")
    client.post(f"/api/v1/runs/{run['id']}/all-clear", json={"message": "All clear"}, headers=people["principal"])
    for who in (teacher, partner):
        ended = _received(who, "run.ended")
        assert ended and ended[-1]["payload"]["reason"] == "all_clear"


def test_every_event_carries_run_id_and_seq(app, client, people):
    teacher = _client(app, people["teacher"])
    run = _start(client, people["principal"], people["school"])
    client.post(f"/api/v1/runs/{run['id']}/updates", json={"message": "hello"}, headers=people["principal"])
    messages = teacher.get_received()
    assert messages
    seqs = [m["args"][0]["seq"] for m in messages if "seq" in m["args"][0]]
    assert all(m["args"][0]["run_id"] == run["id"] for m in messages)
    assert seqs == sorted(seqs)


def test_end_to_end_with_a_real_socketio_client(app, people):
    """A served app, a real python-socketio client logged in as a teacher, a principal using HTTP."""
    import requests

    with ServedThread(app) as served:
        got = threading.Event()
        events = []
        sio = socketio_client.Client(reconnection=False)

        @sio.on("run.started")
        def on_started(data):
            events.append(data)
            got.set()

        sio.connect(served.url, auth={"token": _token(people["teacher"])}, transports=["websocket"],
                    wait_timeout=10)
        try:
            response = requests.post(served.url + "/api/v1/runs", headers=people["principal"], timeout=10,
                                     json={"school_id": people["school"].id, "playbook": "lockdown",
                                           "mode": "drill"})
            assert response.status_code == 201
            assert got.wait(10), "run.started did not arrive"
            assert events[0]["payload"]["directive"] == "Locks, lights, out of sight."
        finally:
            sio.disconnect()


def test_real_client_with_a_bad_token_is_refused(app):
    with ServedThread(app) as served:
        sio = socketio_client.Client(reconnection=False)
        with pytest.raises(socketio_client.exceptions.ConnectionError):
            sio.connect(served.url, auth={"token": "bad"}, transports=["websocket"], wait_timeout=5)


def test_check_in_details_go_to_admins_partners_and_the_reporter_and_the_summary_to_everyone(
        app, client, people, make_person, make_room, login):
    school = people["school"]
    room = make_room(school, number="204")
    reporter = login(make_person("teacher", [school], name="Rita Reporter", home_room_id=room.id))
    phones = {who: _client(app, people[who]) for who in ("principal", "teacher", "district", "partner")}
    phones["reporter"] = _client(app, reporter)
    run = _start(client, people["principal"], school, mode="real")
    for phone in phones.values():
        phone.get_received()

    response = client.post(f"/api/v1/runs/{run['id']}/checkins", json={"status": "all_accounted", "present": 22},
                           headers=reporter)
    assert response.status_code == 201

    received = {who: phone.get_received() for who, phone in phones.items()}
    details = {who: [m["args"][0] for m in got if m["name"] == "checkin.recorded"] for who, got in received.items()}
    summaries = {who: [m["args"][0] for m in got if m["name"] == "accountability.updated"]
                 for who, got in received.items()}
    assert {who for who, got in details.items() if got} == {"principal", "district", "partner", "reporter"}
    assert details["teacher"] == []
    assert all(len(got) == 1 and got[0]["payload"]["reported"] == 1 for got in summaries.values())
    assert summaries["teacher"][0]["seq"] == details["principal"][0]["seq"]


def test_a_drill_check_in_reaches_no_partner(app, client, people, make_room):
    room = make_room(people["school"], number="204")
    partner = _client(app, people["partner"])
    run = _start(client, people["principal"], people["school"])
    response = client.post(f"/api/v1/runs/{run['id']}/checkins",
                           json={"status": "all_accounted", "present": 22, "room_id": room.id},
                           headers=people["teacher"])
    assert response.status_code == 201
    assert partner.get_received() == []


def test_an_event_is_encoded_once_for_all_the_phones_of_a_school(app, people, make_person, login, monkeypatch):
    """Served for real: the server encodes run.started once, and each socket gets it once."""
    import requests
    from socketio import packet

    tokens = [_token(people["teacher"])] * 3 + [_token(login(make_person("teacher", [people["school"]])))]
    tokens.append(_token(people["district"]))  # in the district room and its person room
    encoded = []
    original = packet.Packet.encode

    def counting(self):
        if self.packet_type == packet.EVENT and self.data and self.data[0] == "run.started":
            encoded.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(packet.Packet, "encode", counting)
    with ServedThread(app) as served:
        got = [[] for _ in tokens]
        phones = []
        for token, box in zip(tokens, got, strict=True):
            sio = socketio_client.Client(reconnection=False)
            sio.on("run.started", box.append)
            sio.connect(served.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
            phones.append(sio)
        try:
            response = requests.post(served.url + "/api/v1/runs", headers=people["principal"], timeout=10,
                                     json={"school_id": people["school"].id, "playbook": "lockdown", "mode": "drill"})
            assert response.status_code == 201
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(got):
                time.sleep(0.05)
        finally:  # together: each client waits up to 3 s for the development server's close frame
            with ThreadPoolExecutor(max_workers=len(phones) or 1) as pool:
                list(pool.map(lambda sio: sio.disconnect(), phones))
    assert [len(box) for box in got] == [1] * len(tokens)  # each socket once, even in several rooms
    assert len(encoded) == 1  # one encoding for the school, the district and the people together


def test_a_commit_does_not_wait_for_its_fan_out(app, client, people, monkeypatch):
    """POST /runs answers before the phones are written to: the emit happens in the publisher's own task."""
    from emergency.realtime.socket import SocketPublisher

    gate = threading.Event()
    emitted = []
    original = SocketPublisher._emit

    def slow_emit(self, push):
        gate.wait(10)  # a fan-out to thousands of phones, held until the request has answered
        emitted.append(push.name)
        original(self, push)

    monkeypatch.setattr(SocketPublisher, "_emit", slow_emit)
    teacher = _client(app, people["teacher"])
    run = _start(client, people["principal"], people["school"])  # answers although nothing was emitted yet
    assert emitted == []
    gate.set()
    started = _received(teacher, "run.started")
    assert [event["run_id"] for event in started] == [run["id"]]
    assert emitted[0] == "run.started"


def test_a_big_fan_out_hands_the_loop_back_every_few_hundred_phones(app, monkeypatch):
    from emergency.realtime import socket as live

    socketio = app.extensions["socketio"]
    manager = socketio.server.manager
    assert isinstance(manager, live.YieldingManager)
    for n in range(live.YIELD_EVERY * 3 + 7):
        manager.basic_enter_room(f"sid{n}", "/", "school:1", eio_sid=f"eio{n}")
    sleeps = []
    monkeypatch.setattr(socketio.server, "sleep", lambda seconds=0: sleeps.append(seconds))
    participants = list(manager.get_participants("/", ["school:1", "district"]))
    assert len(participants) == live.YIELD_EVERY * 3 + 7
    assert sleeps == [0, 0, 0]


class _NoWalk(dict):
    """A namespace's rooms that refuse to be walked: a disconnect must find a socket's rooms another way."""

    def copy(self):
        raise AssertionError("walked every room of the namespace")

    def items(self):
        raise AssertionError("walked every room of the namespace")


def test_a_disconnect_leaves_only_its_own_rooms_without_walking_all_of_them(app):
    from emergency.realtime.socket import YieldingManager

    manager = YieldingManager()
    manager.set_server(app.extensions["socketio"].server)
    for n in range(3):
        sid = manager.pre_connect(f"eio{n}", "/")
        manager.connect(sid, "/")
        manager.basic_enter_room(sid, "/", "school:1")
        if n == 0:
            manager.basic_enter_room(sid, "/", "admins:1")
    first, second, third = (manager.sid_from_eio_sid(f"eio{n}", "/") for n in range(3))
    assert sorted(manager.get_rooms(first, "/")) == sorted([first, "school:1", "admins:1"])
    manager.rooms["/"] = _NoWalk(manager.rooms["/"])
    manager.pre_disconnect(first, "/")
    manager.basic_disconnect(first, "/")
    assert [sid for sid, _ in manager.get_participants("/", "school:1")] == [second, third]
    assert "admins:1" not in manager.rooms["/"] and first not in manager.rooms["/"]
    assert not manager.is_connected(first, "/") and manager.is_connected(second, "/")
    assert manager.pending_disconnect == {}
    assert manager.get_rooms(first, "/") == []
    manager.basic_close_room("school:1", "/")
    assert manager.get_rooms(second, "/") == [second]


def test_a_requests_pushes_go_out_once_its_response_is_closed(app, people):
    """The fan-out starts after the response was sent: never between the request's own round trips."""
    plain = app.test_client_class.__mro__[1](app, app.response_class)  # a client that leaves responses open
    teacher = _client(app, people["teacher"])
    body = {"school_id": people["school"].id, "playbook": "lockdown", "mode": "drill", "confirm": True}
    response = plain.post("/api/v1/runs", json=body, headers=people["principal"])
    assert response.status_code == 201
    assert _received(teacher, "run.started") == [], "the response is still open: nothing went out yet"
    response.close()
    assert [event["run_id"] for event in _received(teacher, "run.started")] == [response.get_json()["id"]]
