"""Sending a `push` alert to the one device it was written for, and what a gone device means.

The dispatcher claims push alerts like SMS (same retries, same priority order) and hands each to
`PushSender.send`; fan-out wrote one alert per device (`Alert.subscription_id`) with its payload.
"""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from emergency.alerts.models import Alert
from emergency.alerts.providers.base import ProviderError, SendResult
from emergency.alerts.providers.webpush import GONE, WebPushProvider
from emergency.db import reading_only
from emergency.push.models import PushSubscription
from emergency.push.payload import delivery_options, receipt
from emergency.push.service import remove_gone
from emergency.runs import timeline
from emergency.runs.models import Run

_TARGET = (select(Alert.id, Alert.payload, PushSubscription.endpoint, PushSubscription.p256dh,
                  PushSubscription.auth)
           .outerjoin(PushSubscription, PushSubscription.id == Alert.subscription_id))


class PushSender:
    """Looks up an alert's device and payload, adds the receipt, and sends it through the provider.

    A fan-out is thousands of pushes, and each one's own database round trips would cost more than
    its encryption: `prepare` loads a whole claimed batch in one query, and the dispatcher records
    the accepted pushes together with its texts and calls (alerts.recording).
    """

    def __init__(self, sessions: sessionmaker, provider: WebPushProvider | None, secret: str):
        self.sessions = sessions
        self.provider = provider
        self.secret = secret
        self._targets: dict[int, object] = {}
        self._lock = threading.Lock()

    def _load(self, alert_ids: list[int]) -> list:
        marker = reading_only.set(True)  # a read: on SQLite it need not queue for the write lock
        try:
            with self.sessions() as session:
                rows = session.execute(_TARGET.where(Alert.id.in_(alert_ids))).all()
                session.rollback()
        finally:
            reading_only.reset(marker)
        return rows

    def prepare(self, alert_ids: list[int]) -> None:
        """Load the devices and payloads of a claimed batch at once."""
        if alert_ids:
            rows = self._load(alert_ids)
            with self._lock:
                self._targets.update((row.id, row) for row in rows)

    def send(self, alert_id: int) -> SendResult:
        """Send one push alert; raises ProviderError (permanent if the device or the setup is missing)."""
        with self._lock:
            row = self._targets.pop(alert_id, None)
        if self.provider is None:
            raise ProviderError("Web Push is not configured: set VAPID_PRIVATE_KEY", temporary=False)
        if row is None:
            [row] = self._load([alert_id])
        if row.endpoint is None:
            raise ProviderError("device removed before the push was sent", temporary=False)
        payload = {**(row.payload or {}), "alert_id": alert_id, "receipt": receipt(self.secret, alert_id)}
        urgency, ttl = delivery_options(payload)
        subscription = {"endpoint": row.endpoint, "keys": {"p256dh": row.p256dh, "auth": row.auth}}
        return self.provider.send_push(subscription, payload, urgency=urgency, ttl=ttl)


def is_gone(alert: Alert, error: ProviderError) -> bool:
    """The push service says this device's subscription no longer exists (404/410)."""
    return alert.channel == "push" and error.http_status in GONE


def device_gone(session: Session, alert: Alert) -> None:
    """Delete the gone device, and tell the run's timeline the person lost a channel. Flushes."""
    removed = remove_gone(session, alert.subscription_id)
    if removed is None:
        return
    _person_id, left = removed
    alert.error_message = f"{alert.error_message or 'device no longer subscribed'}; device removed"[:300]
    timeline.record(session, session.get(Run, alert.run_id), "push.device_removed", {
        "alert_id": alert.id, "recipient": alert.recipient_name, "role": alert.recipient_role,
        "devices_left": left, "reason": "the push service says this device is no longer subscribed",
    })
