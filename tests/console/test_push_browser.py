"""Web Push in headless Chromium against a served demo instance.

The hop from a push service to the browser needs Google's push service (FCM), which a test machine
cannot reach; the rest is real. The server encrypts and signs each push with pywebpush and sends it to
the fake push service (tests/fakes/fake_push.py), which verifies and decrypts it; the test then hands
that exact payload to the teacher's service worker through the DevTools protocol
(`ServiceWorker.deliverPushMessage`, what Chromium's own "Push" button in DevTools does), with the
console tab closed. The service worker shows the notification, reports it received, and the test
presses its Acknowledge button through the worker's own click handler.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.console.conftest import log_in
from tests.console.served import CHROMIUM, CHROMIUM_ARGS, PHONE, PRINCIPAL, TEACHER, browser_missing
from tests.fakes.fake_push import FakePush

pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None,
                                                      reason=f"browser tests need {browser_missing()}")]

DRILL_BANNER = "DRILL - THIS IS A DRILL."


@pytest.fixture
def push_service():
    with FakePush() as fake:
        yield fake


def school_id(served, code: str = "PCMS") -> int:
    return next(s["id"] for s in served.get(PRINCIPAL, "/schools") if s["code"] == code)


def wait_until(check, timeout: float = 15.0, message: str = "condition", page=None):
    """Poll `check`; with a page, wait through Playwright so its events (DevTools, workers) arrive meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def service_worker_registration(context, page) -> tuple:
    """The CDP session of a page and the service worker's registration id."""
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    registration = wait_until(lambda: next((r for r in registrations if not r.get("isDeleted")), None),
                              message="the service worker registration", page=page)
    return cdp, registration["registrationId"]


# How long the opt-in may wait for the browser's push service to hand out a subscription.
SUBSCRIBE_WAIT_MS = 30_000


def test_the_opt_in_button_registers_a_real_subscription_where_chromium_can(served, browser, tmp_path):
    """A persistent profile (not Playwright's usual incognito context, see the next test) with a real push
    service behind it: Chromium registers with Google's FCM, which needs the internet."""
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=PHONE,
        base_url=served.base)
    try:
        context.grant_permissions(["notifications"], origin=served.base)
        teacher = context.new_page()
        teacher.goto("/")
        log_in(teacher, TEACHER)
        teacher.locator("[data-testid=push-on]").click()
        status = teacher.locator("[data-testid=push-status]")
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            status.wait_for(timeout=SUBSCRIBE_WAIT_MS)
        except PlaywrightTimeout:
            pytest.skip(f"pushManager.subscribe() had no answer in {SUBSCRIBE_WAIT_MS // 1000} s: with a real "
                        f"profile Chromium subscribes through Google's push service (FCM, fcm.googleapis.com), "
                        f"which this machine cannot reach")
        text = status.text_content()
        devices = served.get(TEACHER, "/me/push-subscriptions")
        if not devices:
            pytest.skip(f"Chromium refused pushManager.subscribe() with {text!r}, so no real subscription here")
        assert "Notifications on" in text
        assert devices[0]["this_device"] is False  # registered with the browser's token, not this API client's
    finally:
        context.close()


def test_a_browser_that_refuses_push_is_told_why_and_may_try_again(served, phone):
    # Playwright's contexts are off-the-record, and Chromium has no push service there: it answers every
    # subscribe() with "Registration failed - permission denied", on purpose indistinguishable from a
    # refusal, however the notifications permission stands. The teacher sees the browser's words.
    teacher = phone(TEACHER)
    teacher.context.grant_permissions(["notifications"])
    teacher.reload()
    button = teacher.locator("[data-testid=push-on]")
    button.click()
    from playwright.sync_api import expect

    expect(teacher.locator("[data-testid=push-status]")).to_have_text("Registration failed - permission denied")
    expect(button).to_be_enabled()


def test_a_drill_notification_reaches_the_closed_console_and_acknowledge_records_it(served, phone, push_service):
    teacher = phone(TEACHER)
    context = teacher.context
    context.grant_permissions(["notifications"])
    # The console registers its service worker on load; the teacher then closes the tab.
    teacher.wait_for_function("navigator.serviceWorker.controller !== null || navigator.serviceWorker.ready")
    teacher.evaluate("navigator.serviceWorker.ready.then(() => true)")
    holder = context.new_page()  # a blank tab keeps the browser context (and its DevTools session) alive
    cdp, registration_id = service_worker_registration(context, holder)
    teacher.close()

    # The teacher's device, as the push service knows it: registered through the real API.
    device = push_service.new_device()
    token = served.token(TEACHER)
    response = requests.post(f"{served.base}/api/v1/me/push-subscriptions", json=device.subscription(), timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text

    run = served.post(PRINCIPAL, "/runs", {"school_id": school_id(served), "playbook": "lockdown", "mode": "drill"},
                      **{"Idempotency-Key": str(uuid.uuid4())})
    try:
        received = push_service.wait_for(1, timeout=20)[0]
        payload = received.payload
        assert payload["run_id"] == run["id"] and payload["drill"] is True
        assert payload["title"].startswith(DRILL_BANNER)

        cdp.send("ServiceWorker.deliverPushMessage", {"origin": served.base, "registrationId": registration_id,
                                                      "data": json.dumps(payload)})
        worker = wait_until(lambda: context.service_workers[0] if context.service_workers else None,
                            message="the service worker", page=holder)
        notifications = wait_until(lambda: worker.evaluate("""async () => (await self.registration.getNotifications())
            .map((n) => ({title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
                          vibrate: n.vibrate, actions: n.actions.map((a) => a.action), data: n.data}))"""),
                                   message="the notification", page=holder)
        [shown] = notifications
        assert shown["title"].startswith(DRILL_BANNER) and "Lockdown" in shown["title"]
        assert "Locks, lights, out of sight." in shown["body"]
        assert shown["requireInteraction"] is True and shown["vibrate"]
        assert shown["actions"] == ["ack", "open"]
        assert shown["tag"] == f"run-{run['id']}"

        # The worker reported the notification as received: the alert is delivered.
        alert_id = payload["alert_id"]

        def delivered():
            alerts = served.get(PRINCIPAL, f"/runs/{run['id']}/alerts")
            rows = [a for r in alerts["recipients"] for a in r["alerts"] if a["id"] == alert_id]
            return rows and rows[0]["status"] == "delivered"

        wait_until(delivered, message="the alert to be delivered")

        # Acknowledge, from the notification, without opening the app.
        pages_before = len(context.pages)
        worker.evaluate("""async () => {
            const [notification] = await self.registration.getNotifications();
            await onNotificationClick({action: "ack", notification});
        }""")
        acks = served.get(PRINCIPAL, f"/runs/{run['id']}/alerts")["acks"]
        assert acks["by_channel"] == {"push": 1}
        assert [a["name"] for a in acks["acknowledgements"]] == [served.get(TEACHER, "/me")["name"]]
        assert len(context.pages) == pages_before  # nothing was opened
        [confirmation] = worker.evaluate(
            "async () => (await self.registration.getNotifications()).map((n) => ({title: n.title, "
            "requireInteraction: n.requireInteraction}))")
        assert confirmation["title"].startswith("Acknowledged") and confirmation["requireInteraction"] is False

        # A tap opens the run. Outside a real click the browser allows no window to open, so the worker's
        # window opener is replaced by a recorder: what is checked is where a tap would go.
        opened = worker.evaluate("""async (alert) => {
            let opened = null;
            Object.defineProperty(self.clients, "openWindow", {value: async (url) => { opened = url; }});
            await onNotificationClick({action: "", notification: {data: alert, close() {}}});
            return opened;
        }""", payload)
        assert opened == f"{served.base}/#/run/{run['id']}"
    finally:
        if served.get(PRINCIPAL, f"/runs/{run['id']}")["state"] == "active":
            served.post(PRINCIPAL, f"/runs/{run['id']}/all-clear", {"message": "test over"})


def test_the_principals_board_shows_the_acknowledgement(served, phone, push_service):
    principal = phone(PRINCIPAL)
    device = push_service.new_device()
    requests.post(f"{served.base}/api/v1/me/push-subscriptions", json=device.subscription(), timeout=10,
                  headers={"Authorization": f"Bearer {served.token(TEACHER)}"}).raise_for_status()
    run = served.post(PRINCIPAL, "/runs", {"school_id": school_id(served), "playbook": "lockdown", "mode": "drill"},
                      **{"Idempotency-Key": str(uuid.uuid4())})
    try:
        principal.goto(f"/#/run/{run['id']}/board")
        payload = wait_until(lambda: next((p for p in push_service.for_device(device) if p["run_id"] == run["id"]),
                                          None), timeout=20, message="the push")
        response = requests.post(f"{served.base}/api/v1/runs/{run['id']}/alerts/{payload['alert_id']}/ack",
                                 json={"receipt": payload["receipt"]}, timeout=10)
        assert response.status_code == 200, response.text
        from playwright.sync_api import expect

        expect(principal.locator("[data-testid=acks]")).to_contain_text("1/")
    finally:
        served.post(PRINCIPAL, f"/runs/{run['id']}/all-clear", {"message": "test over"})


def test_a_device_the_push_service_calls_gone_is_removed_and_shown_on_the_board(served, phone, push_service):
    principal = phone(PRINCIPAL)
    teacher_name = served.get(TEACHER, "/me")["name"]
    device = push_service.new_device()
    registered = requests.post(f"{served.base}/api/v1/me/push-subscriptions", json=device.subscription(), timeout=10,
                               headers={"Authorization": f"Bearer {served.token(TEACHER)}"})
    registered.raise_for_status()
    before = served.get(PRINCIPAL, f"/schools/{school_id(served)}/push")["devices"]
    push_service.answer(device, 410)
    run = served.post(PRINCIPAL, "/runs", {"school_id": school_id(served), "playbook": "lockdown", "mode": "drill"},
                      **{"Idempotency-Key": str(uuid.uuid4())})
    try:
        principal.goto(f"/#/run/{run['id']}/board")
        from playwright.sync_api import expect

        expect(principal.locator(".timeline-text", has_text="Push notifications lost")).to_contain_text(
            teacher_name, timeout=20000)
        assert registered.json()["id"] not in [d["id"] for d in served.get(TEACHER, "/me/push-subscriptions")]
        assert served.get(PRINCIPAL, f"/schools/{school_id(served)}/push")["devices"] == before - 1
    finally:
        served.post(PRINCIPAL, f"/runs/{run['id']}/all-clear", {"message": "test over"})
