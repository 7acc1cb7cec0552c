"""The URLs Twilio calls: inbound SMS, the TwiML of alert calls, key presses and status callbacks.

Every request must carry a valid X-Twilio-Signature for PUBLIC_BASE_URL + path (+ query); anything
else is refused with 403 before a single field is read. Without TWILIO_AUTH_TOKEN every request is
refused: an empty key would let anyone forge a signature.

An alert call goes:  POST /voice/<id>  -> the message and "Press 1 to confirm." in a <Gather>,
the same once more if no key is pressed, then "Goodbye.";  a key press POSTs /voice/<id>/gather:
1 acknowledges, any other key hears the prompt once more (?attempt=2), then "Goodbye.".
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from emergency.alerts.acks import RunEnded, acknowledge, find_ack
from emergency.alerts.delivery import apply_provider_status, push_summary
from emergency.alerts.fanout import CLOSING_OCCASIONS
from emergency.alerts.models import Alert
from emergency.alerts.signature import SIGNATURE_HEADER, is_valid_signature, public_url
from emergency.db import db
from emergency.errors import error_body
from emergency.playbooks.templates import DRILL_BANNER, banner
from emergency.runs.models import Run
from emergency.sms.inbound import handle_inbound_sms

log = logging.getLogger(__name__)

blp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")

XML = "text/xml; charset=utf-8"
PROMPT = "Press 1 to confirm."
GATHER_SECONDS = 8


def _xml(twiml: VoiceResponse | MessagingResponse, status: int = 200) -> Response:
    return Response(twiml.to_xml(), status=status, content_type=XML)


def _bad_request(missing: str) -> tuple[Response, int]:
    return jsonify(error_body(400, "bad_request", f"Missing {missing}.")), 400


def _form(name: str) -> str | None:
    """A form field without NUL characters, which PostgreSQL refuses to store or compare."""
    value = request.form.get(name)
    return value.replace("\x00", "") if value is not None else None


@blp.before_request
def _check_signature():
    """Refuse anything Twilio did not sign, before any field is looked at."""
    config = current_app.config
    url = public_url(config["PUBLIC_BASE_URL"], request.path, request.query_string)
    if not is_valid_signature(config.get("TWILIO_AUTH_TOKEN") or "", url, request.form,
                              request.headers.get(SIGNATURE_HEADER)):
        log.warning("refused an unsigned or badly signed webhook to %s", request.path)
        return Response("Forbidden: invalid or missing Twilio signature.\n", status=403, content_type="text/plain")
    return None


# -- SMS ------------------------------------------------------------------------------------------

@blp.post("/sms")
def inbound_sms():
    """An SMS to our number: the reply, if any, goes back as TwiML."""
    if "From" not in request.form or "Body" not in request.form:
        return _bad_request("From or Body")
    text = handle_inbound_sms(db.session, _form("From"), _form("Body"), _form("MessageSid") or None)
    response = MessagingResponse()
    if text:
        response.message(text)
    return _xml(response)


# -- voice ----------------------------------------------------------------------------------------

def _gather_url(alert_id: int, attempt: int = 1) -> str:
    url = f"{current_app.config['PUBLIC_BASE_URL']}/webhooks/twilio/voice/{alert_id}/gather"
    return f"{url}?attempt={attempt}" if attempt > 1 else url


def spoken_message(run: Run, alert: Alert) -> str:
    """What the call says: the alert's own words, which for a drill always start with the banner."""
    text = " ".join(alert.body.split())
    if run.mode == "drill" and not text.startswith(DRILL_BANNER):
        text = f"{DRILL_BANNER} {text}"
    return text


def _prompt(response: VoiceResponse, message: str, action: str) -> None:
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=GATHER_SECONDS)
    gather.say(message)
    gather.say(PROMPT)


def _goodbye(response: VoiceResponse) -> VoiceResponse:
    response.say("Goodbye.")
    response.hangup()
    return response


def _ended(response: VoiceResponse, run: Run) -> VoiceResponse:
    action = run.playbook.get("name") or run.action
    response.say(f"{banner(run.mode)}The {action} alert at {run.school.name} has ended.")
    return _goodbye(response)


def _alert_and_run(alert_id: int) -> tuple[Alert | None, Run | None]:
    alert = db.session.get(Alert, alert_id)
    return alert, (db.session.get(Run, alert.run_id) if alert else None)


@blp.post("/voice/<int(max=2147483647):alert_id>")  # an id the column can hold, or 404
def voice_call(alert_id: int):
    """What an alert call says when it is answered."""
    alert, run = _alert_and_run(alert_id)
    response = VoiceResponse()
    if alert is None:
        db.session.rollback()
        return _xml(_goodbye(response))
    message = spoken_message(run, alert)
    closing = alert.occasion in CLOSING_OCCASIONS
    if not run.is_active and not closing:
        response = _ended(response, run)
    elif not alert.requires_ack or not run.is_active:
        response.say(message)
        response.pause(length=1)
        response.say(message)  # said twice: the first words are often lost while the phone comes up
        _goodbye(response)
    elif find_ack(db.session, run.id, person_id=alert.person_id, partner_id=alert.partner_id) is not None:
        response.say(message)
        response.say("Your confirmation is already recorded.")
        _goodbye(response)
    else:
        _prompt(response, message, _gather_url(alert_id))
        _prompt(response, message, _gather_url(alert_id))  # no key pressed: once more
        _goodbye(response)
    db.session.rollback()
    return _xml(response)


@blp.post("/voice/<int(max=2147483647):alert_id>/gather")
def voice_gather(alert_id: int):
    """A key press during an alert call: 1 acknowledges, anything else hears the prompt once more."""
    if "Digits" not in request.form:
        return _bad_request("Digits")
    alert, run = _alert_and_run(alert_id)
    response = VoiceResponse()
    if alert is None:
        db.session.rollback()
        return _xml(_goodbye(response))
    if (_form("Digits") or "").strip() == "1":
        try:
            acknowledge(db.session, run, person_id=alert.person_id, partner_id=alert.partner_id,
                        channel="voice", alert_id=alert.id)
        except RunEnded:
            db.session.rollback()
            return _xml(_ended(response, run))
        drill = " drill" if run.mode == "drill" else ""
        response.say(f"Thank you. Your confirmation of the {run.playbook.get('name') or run.action}{drill} "
                     f"at {run.school.name} is recorded.")
        return _xml(_goodbye(response))
    db.session.rollback()
    if request.args.get("attempt") == "2":
        return _xml(_goodbye(response))
    response.say("That was not 1.")
    _prompt(response, spoken_message(run, alert), _gather_url(alert_id, attempt=2))
    return _xml(_goodbye(response))


# -- status callbacks -----------------------------------------------------------------------------

@blp.post("/status")
def status_callback():
    """Twilio reports a message's or call's progress: move the alert forward, never back."""
    sid = _form("MessageSid") or _form("CallSid")
    status = _form("MessageStatus") or _form("CallStatus")
    if not sid or not status:
        return _bad_request("MessageSid/CallSid or MessageStatus/CallStatus")
    try:
        error_code = int(_form("ErrorCode") or 0) or None
    except ValueError:
        error_code = None
    if error_code is not None and not 0 < error_code < 2**31:
        error_code = None  # not a Twilio code, and it would not fit the column
    session = db.session
    # The callback URL names the alert (?alert=ID): Twilio can call back before the dispatcher has
    # stored the SID its create request returned, and a callback matched by SID alone would be lost.
    by_id = request.args.get("alert", "")
    match = Alert.id == int(by_id) if by_id.isdigit() and len(by_id) < 12 else Alert.provider_sid == sid
    # Locked: two callbacks for one alert at once must not both start from the old status.
    alert = session.scalar(select(Alert).where(match).with_for_update().execution_options(populate_existing=True))
    if alert is not None and alert.provider_sid not in (None, sid):
        alert = None  # the id and the SID disagree: not a callback for this alert
    if alert is not None and alert.provider_sid is None:
        alert.provider_sid = sid
    if alert is not None and apply_provider_status(session, alert, status, error_code):
        run = session.get(Run, alert.run_id)
        push_summary(session, run)
    # An unknown SID is not an error: another app's message, or one sent before its SID was stored.
    return Response(status=204)
