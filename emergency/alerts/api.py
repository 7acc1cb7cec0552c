"""Acknowledging a run in the app, who was alerted and how it went, and who opted out of SMS."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.alerts import outbox
from emergency.alerts.acks import ack_stats, acknowledge
from emergency.alerts.delivery import summary
from emergency.alerts.escalation import ESCALATION
from emergency.alerts.models import NOT_REACHED, Alert, OptOut
from emergency.alerts.queue import queue_position
from emergency.alerts.schemas import AckSchema, OptOutListSchema, RunAlertsSchema
from emergency.db import db
from emergency.directory.principal import Principal
from emergency.directory.service import get_school, partners_of, people_of
from emergency.errors import Forbidden
from emergency.phones import mask_phone
from emergency.runs.models import Run
from emergency.runs.partners import run_alerts_for_partner
from emergency.runs.service import get_run
from emergency.timeutil import iso
from emergency.web import current_principal

blp = Blueprint("alerts", __name__, url_prefix="/api/v1", description="Acknowledgements and alert delivery")


@blp.route("/runs/<int:run_id>/ack")
class Ack(MethodView):
    @blp.response(200, AckSchema)
    def post(self, run_id: int):
        """Acknowledge the run's alert for the caller (a second acknowledgement returns the first)."""
        principal = current_principal()
        run = get_run(db.session, principal, run_id)
        ids = {"partner_id": principal.id} if principal.kind == "partner" else {"person_id": principal.id}
        recipient = Alert.partner_id == principal.id if principal.kind == "partner" else Alert.person_id == principal.id
        alert_id = db.session.scalar(select(Alert.id).where(Alert.run_id == run.id, recipient)
                                     .order_by(Alert.id.desc()).limit(1))
        ack, created = acknowledge(db.session, run, channel="app", alert_id=alert_id, **ids)
        return {"id": ack.id, "run_id": ack.run_id, "kind": principal.kind, "person_id": ack.person_id,
                "partner_id": ack.partner_id, "alert_id": ack.alert_id, "channel": ack.channel,
                "acknowledged_at": iso(ack.acknowledged_at), "created": created}


@blp.route("/runs/<int:run_id>/alerts")
class RunAlerts(MethodView):
    @blp.response(200, RunAlertsSchema)
    def get(self, run_id: int):
        """Who was alerted through which channel, what happened, who confirmed and how fast."""
        principal = current_principal()
        run = get_run(db.session, principal, run_id)
        queue = queue_position(db.session, run.id, current_app.extensions["dispatcher"].rates())
        return run_alerts_view(db.session, principal, run, queue)


@blp.route("/schools/<int:school_id>/opt-outs")
class OptOuts(MethodView):
    @blp.response(200, OptOutListSchema)
    def get(self, school_id: int):
        """Staff and partners of the school who replied STOP: before a drill, they will only get calls."""
        principal = current_principal()
        school = get_school(db.session, principal, school_id)
        if not principal.is_admin_of(school.id):
            raise Forbidden("Only the school's admins can see who opted out of texts.")
        return {"school_id": school.id, "opt_outs": school_opt_outs(db.session, school.id)}


def _recipient_key(alert: Alert) -> tuple[str, int]:
    return alert.recipient_kind, alert.partner_id or alert.person_id


def _alert_row(alert: Alert, show_numbers: bool) -> dict:
    return {
        "id": alert.id, "occasion": alert.occasion, "channel": alert.channel, "status": alert.status,
        "provider_status": alert.provider_status, "error_code": alert.error_code,
        "error_message": alert.error_message,
        "to_number": alert.to_number if show_numbers else mask_phone(alert.to_number),
        "queued_at": iso(alert.queued_at), "sent_at": iso(alert.sent_at), "delivered_at": iso(alert.delivered_at),
        "acknowledged_at": iso(alert.acknowledged_at), "ack_channel": alert.ack_channel,
    }


def run_alerts_view(session: Session, principal: Principal, run: Run, queue: dict) -> dict:
    """A run's alerts per recipient; numbers only for admins, and only counts for partners."""
    stats = ack_stats(session, run)
    view = {"run_id": run.id, "mode": run.mode, "state": run.state, "summary": summary(session, run.id),
            "queue": queue}
    if principal.is_partner:
        return run_alerts_for_partner({**view, "acks": stats})
    show_numbers = principal.is_admin_of(run.school_id)
    opted_out = outbox.opted_out(session)
    acked = {(row["kind"], row["id"]): row for row in stats["acknowledgements"]}
    recipients: dict[tuple[str, int], dict] = {}
    calls_unanswered: set[tuple[str, int]] = set()
    for alert in session.scalars(select(Alert).where(Alert.run_id == run.id)
                                 .order_by(Alert.priority, Alert.recipient_name, Alert.id)):
        key = _recipient_key(alert)
        recipient = recipients.get(key)
        if recipient is None:
            ack = acked.get(key)
            recipient = recipients[key] = {
                "kind": key[0], "id": key[1], "name": alert.recipient_name, "role": alert.recipient_role,
                "to_number": alert.to_number if show_numbers else mask_phone(alert.to_number),
                "opted_out": alert.to_number in opted_out,
                "acknowledged_at": ack["acknowledged_at"] if ack else None,
                "ack_channel": ack["channel"] if ack else None, "ack_seconds": ack["seconds"] if ack else None,
                "alerts": [],
            }
        recipient["alerts"].append(_alert_row(alert, show_numbers))
        if alert.occasion == ESCALATION and alert.escalated_at is not None:
            calls_unanswered.add(key)
    view["acks"] = stats
    view["recipients"] = list(recipients.values())
    view["unreachable"] = [_who(r) for key, r in recipients.items() if _unreachable(r, key in calls_unanswered)]
    view["opted_out"] = [_who(r) for r in recipients.values() if r["opted_out"]]
    return view


def _who(recipient: dict) -> dict:
    return {"kind": recipient["kind"], "id": recipient["id"], "name": recipient["name"], "role": recipient["role"]}


def _unreachable(recipient: dict, call_unanswered: bool) -> bool:
    """Not confirmed, and either the escalation call went unanswered or no SMS or call got through."""
    if recipient["acknowledged_at"]:
        return False
    phone = [a for a in recipient["alerts"] if a["channel"] in ("sms", "voice")]
    return call_unanswered or (bool(phone) and all(a["status"] in NOT_REACHED for a in phone))


def school_opt_outs(session: Session, school_id: int) -> list[dict]:
    """The school's staff and partners whose numbers replied STOP, with masked numbers."""
    opt_outs = {o.number: o for o in session.scalars(select(OptOut))}
    rows = []
    contacts = [("person", p, p.role) for p in people_of(session, school_id)] + \
               [("partner", p, "partner") for p in partners_of(session, school_id)]
    for kind, contact, role in contacts:
        opt_out = opt_outs.get(contact.mobile) if contact.mobile else None
        if opt_out is not None:
            rows.append({"kind": kind, "id": contact.id, "name": contact.name, "role": role,
                         "number": mask_phone(contact.mobile), "keyword": opt_out.keyword,
                         "opted_out_at": iso(opt_out.opted_out_at)})
    return sorted(rows, key=lambda r: (r["name"].casefold(), r["kind"], r["id"]))
