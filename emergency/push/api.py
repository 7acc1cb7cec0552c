"""Push devices of the caller, the push settings the console needs, a school's push coverage, and
what a service worker reports back: a notification received, or acknowledged from its button."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.accounts.service import token_id
from emergency.alerts.acks import acknowledge
from emergency.alerts.delivery import apply_provider_status, push_summary
from emergency.alerts.models import Alert
from emergency.alerts.schemas import AckSchema
from emergency.db import db
from emergency.directory.service import get_school
from emergency.errors import Forbidden, NotFound
from emergency.push import service
from emergency.push.models import PushSubscription
from emergency.push.payload import valid_receipt
from emergency.push.schemas import (
    CoverageSchema,
    PushConfigSchema,
    ReceiptSchema,
    ReceivedSchema,
    SubscriptionInSchema,
    SubscriptionSchema,
)
from emergency.runs.models import Run
from emergency.timeutil import iso
from emergency.web import bearer_token, current_principal

blp = Blueprint("push", __name__, url_prefix="/api/v1", description="Web Push: devices, coverage, receipts")


def subscription_view(subscription: PushSubscription, current_token_id: int | None) -> dict:
    """A device as its owner sees it: which push service, never the endpoint (a capability)."""
    return {"id": subscription.id, "push_service": service.endpoint_host(subscription.endpoint),
            "user_agent": subscription.user_agent, "created_at": iso(subscription.created_at),
            "this_device": current_token_id is not None and subscription.token_id == current_token_id}


@blp.route("/push/config")
class PushConfig(MethodView):
    @blp.response(200, PushConfigSchema)
    def get(self):
        """Whether push is on, and the VAPID public key the browser subscribes with."""
        current_principal()
        key = current_app.extensions.get("push_public_key")
        return {"enabled": bool(key), "public_key": key}


@blp.route("/me/push-subscriptions")
class MySubscriptions(MethodView):
    @blp.response(200, SubscriptionSchema(many=True))
    def get(self):
        """The caller's devices with push on."""
        principal = current_principal()
        current = token_id(db.session, bearer_token())
        return [subscription_view(s, current) for s in service.devices_of(db.session, principal)]

    @blp.arguments(SubscriptionInSchema)
    @blp.response(201, SubscriptionSchema)
    def post(self, body):
        """Register this browser's push subscription (the same endpoint again updates it)."""
        principal = current_principal()
        if not current_app.extensions.get("push_public_key"):
            raise Forbidden("Push notifications are not set up on this server (VAPID_PRIVATE_KEY).")
        current = token_id(db.session, bearer_token())
        subscription = service.register(
            db.session, principal, endpoint=body["endpoint"], p256dh=body["keys"]["p256dh"],
            auth=body["keys"]["auth"], user_agent=body["user_agent"] or request.user_agent.string,
            token_id=current, allow_http=current_app.config["ENV"] != "production")
        return subscription_view(subscription, current)


@blp.route("/me/push-subscriptions/<int:subscription_id>")
class MySubscription(MethodView):
    @blp.response(204)
    def delete(self, subscription_id: int):
        """Turn push off for one of the caller's devices."""
        service.remove(db.session, current_principal(), subscription_id)


@blp.route("/schools/<int:school_id>/push")
class SchoolCoverage(MethodView):
    @blp.response(200, CoverageSchema)
    def get(self, school_id: int):
        """How many of the school's staff have push on, and who does not (the school's admins only)."""
        principal = current_principal()
        school = get_school(db.session, principal, school_id)
        if not principal.is_admin_of(school.id):
            raise Forbidden("Only the school's admins can see who has push notifications on.")
        return service.coverage(db.session, school.id)


def _recipients_alert(run_id: int, alert_id: int, receipt: str | None) -> Alert:
    """The alert, if the caller proves to be its recipient: the payload's receipt, or their own login."""
    alert = db.session.get(Alert, alert_id)
    if alert is None or alert.run_id != run_id or alert.channel != "push":
        raise NotFound(f"Push alert {alert_id} of run {run_id} was not found.")
    if receipt is not None:
        if not valid_receipt(current_app.config["SECRET_KEY"], alert.id, receipt):
            raise Forbidden("The receipt does not belong to this alert.")
        return alert
    principal = current_principal()
    if principal.kind != "person" or principal.id != alert.person_id:
        raise NotFound(f"Push alert {alert_id} of run {run_id} was not found.")
    return alert


@blp.route("/runs/<int:run_id>/alerts/<int:alert_id>/received")
class Received(MethodView):
    @blp.arguments(ReceiptSchema)
    @blp.response(200, ReceivedSchema)
    def post(self, body, run_id: int, alert_id: int):
        """The device showed the notification: the alert is delivered (a repeat changes nothing)."""
        alert = _recipients_alert(run_id, alert_id, body["receipt"])
        if apply_provider_status(db.session, alert, "delivered"):
            push_summary(db.session, db.session.get(Run, run_id))
        return {"alert_id": alert.id, "run_id": alert.run_id, "status": alert.status,
                "delivered_at": iso(alert.delivered_at)}


@blp.route("/runs/<int:run_id>/alerts/<int:alert_id>/ack")
class AckFromNotification(MethodView):
    @blp.arguments(ReceiptSchema)
    @blp.response(200, AckSchema)
    def post(self, body, run_id: int, alert_id: int):
        """Acknowledge from the notification's button, without opening the app."""
        alert = _recipients_alert(run_id, alert_id, body["receipt"])
        apply_provider_status(db.session, alert, "delivered")  # pressing the button proves it arrived
        run = db.session.get(Run, run_id)
        ack, created = acknowledge(db.session, run, person_id=alert.person_id, channel="push", alert_id=alert.id)
        return {"id": ack.id, "run_id": ack.run_id, "kind": "person", "person_id": ack.person_id,
                "partner_id": None, "alert_id": ack.alert_id, "channel": ack.channel,
                "acknowledged_at": iso(ack.acknowledged_at), "created": created}
