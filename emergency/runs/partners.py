"""What a partner (police, fire, EMS) may see of a run: an allowlist, as marshmallow schemas.

Partners get real runs at the schools they cover, live and through the API. Everything they
receive is dumped through a schema below, and a schema dumps only the fields it declares: a field
added to a run, an event or a payload stays hidden from partners until someone lists it here on
purpose. Never listed: staff phones and emails, student names, message bodies, private notes.
An event type without a payload schema reaches partners with an empty payload.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from emergency.playbooks.schemas import ChecklistItemSchema, PlaybookAccountabilitySchema
from emergency.schema_fields import (
    ActorSchema,
    NameRoleSchema,
    PersonRefSchema,
    RoomCountsSchema,
    RoomRefSchema,
    SchoolRefSchema,
)


def _counts() -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                          metadata={"description": "a number for each status or channel"})


class RoomStatusRefSchema(RoomRefSchema):
    status = ma.fields.String(metadata={"description": "the room's latest status"})


class AccountabilityCountsSchema(RoomCountsSchema):
    """A run's accountability in numbers (no names)."""

    expected = ma.fields.Integer()
    reported = ma.fields.Integer()
    reported_rooms = ma.fields.Integer()
    percent = ma.fields.Float()
    need_help = ma.fields.Integer()
    fully_accounted_at = ma.fields.String(allow_none=True)


class QueueChannelSchema(ma.Schema):
    waiting = ma.fields.Integer()
    ahead = ma.fields.Integer()
    eta_seconds = ma.fields.Float(allow_none=True)


class DeliverySummarySchema(ma.Schema):
    """Counts of a run's alerts by status and channel, and acknowledgements."""

    total = ma.fields.Integer()
    by_status = _counts()
    by_channel = ma.fields.Dict(keys=ma.fields.String(), values=_counts(),
                                metadata={"description": "for each channel, a number for each status"})
    pending = ma.fields.Integer()
    recipients = ma.fields.Integer()
    acknowledged = ma.fields.Integer()
    asked = ma.fields.Integer()
    queue = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(QueueChannelSchema),
                           metadata={"description": "for each channel, the run's place in the send queue"})


class RecipientSchema(ma.Schema):
    name = ma.fields.String()
    role = ma.fields.String()
    kind = ma.fields.String()


# ---- event payloads: one schema per event type


class _ActionPayload(ma.Schema):
    """The playbook a run follows and what it tells people to do."""

    playbook = ma.fields.String()
    playbook_version = ma.fields.String()
    name = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    location = ma.fields.String(allow_none=True)


class RunStartedPayload(_ActionPayload):
    mode = ma.fields.String()
    note = ma.fields.String(allow_none=True)
    superseded_run_id = ma.fields.Integer(allow_none=True)


class RunUpdatedPayload(ma.Schema):
    message = ma.fields.String()


class RunEndedPayload(ma.Schema):
    reason = ma.fields.String(allow_none=True)
    message = ma.fields.String(allow_none=True)
    state = ma.fields.String()


class ActionChangedPayload(_ActionPayload):
    from_ = ma.fields.String(data_key="from", attribute="from", allow_none=True)


class ChecklistTickedPayload(ma.Schema):
    step = ma.fields.Integer()
    text = ma.fields.String()
    role = ma.fields.String(allow_none=True)
    done = ma.fields.Boolean()


class CheckinRecordedPayload(RoomCountsSchema):
    checkin_id = ma.fields.Integer()
    room = ma.fields.Nested(RoomRefSchema)
    status = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    late = ma.fields.Boolean()
    channel = ma.fields.String()
    reporter = ma.fields.String(allow_none=True)
    supersedes = ma.fields.Integer(allow_none=True)
    has_note = ma.fields.Boolean()


class AccountabilityUpdatedPayload(AccountabilityCountsSchema):
    room = ma.fields.Nested(RoomStatusRefSchema)


class StaffStatusPayload(ma.Schema):
    person = ma.fields.Nested(PersonRefSchema)
    status = ma.fields.String()
    room = ma.fields.Nested(RoomRefSchema, allow_none=True)
    location = ma.fields.String(allow_none=True)
    channel = ma.fields.String()
    has_note = ma.fields.Boolean()


class AckRecordedPayload(ActorSchema):
    channel = ma.fields.String()
    alert_id = ma.fields.Integer(allow_none=True)
    seconds_since_alert = ma.fields.Float(allow_none=True)


class ReminderPayload(ma.Schema):
    rooms = ma.fields.Integer(metadata={"description": "rooms reminded"})


class DeadlinePayload(ma.Schema):
    unaccounted = ma.fields.Integer()
    rooms = ma.fields.List(ma.fields.String(), metadata={"description": "numbers of the rooms not reported"})


class RecipientsPayload(ma.Schema):
    count = ma.fields.Integer()
    recipients = ma.fields.List(ma.fields.Nested(RecipientSchema))
    reason = ma.fields.String()


class EscalatedPayload(ma.Schema):
    alert_id = ma.fields.Integer()
    recipient = ma.fields.String()
    role = ma.fields.String()
    kind = ma.fields.String()
    from_channel = ma.fields.String()
    to_channel = ma.fields.String()
    after_seconds = ma.fields.Integer()


class RecipientUnreachablePayload(RecipientSchema):
    channels = ma.fields.List(ma.fields.String())
    alert_id = ma.fields.Integer()


class AlertFailedPayload(ma.Schema):
    alert_id = ma.fields.Integer()
    recipient = ma.fields.String()
    role = ma.fields.String()
    channel = ma.fields.String()
    status = ma.fields.String()
    error_code = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)


PAYLOADS: dict[str, type[ma.Schema]] = {
    "run.started": RunStartedPayload,
    "run.updated": RunUpdatedPayload,
    "run.ended": RunEndedPayload,
    "run.action_changed": ActionChangedPayload,
    "checklist.ticked": ChecklistTickedPayload,
    "checkin.recorded": CheckinRecordedPayload,
    "accountability.updated": AccountabilityUpdatedPayload,
    "staff.status": StaffStatusPayload,
    "ack.recorded": AckRecordedPayload,
    "alert.delivery": DeliverySummarySchema,
    "accountability.reminder": ReminderPayload,
    "accountability.deadline": DeadlinePayload,
    "alert.unreachable": RecipientsPayload,
    "alert.opted_out": RecipientsPayload,
    "alert.escalated": EscalatedPayload,
    "recipient.unreachable": RecipientUnreachablePayload,
    "alert.failed": AlertFailedPayload,
}
_PAYLOAD_DUMPERS = {type_: schema() for type_, schema in PAYLOADS.items()}


def payload_for_partner(type_: str, payload: dict | None) -> dict:
    """The part of an event's payload a partner may see; {} for a type nobody listed."""
    dumper = _PAYLOAD_DUMPERS.get(type_)
    return dumper.dump(payload or {}) if dumper is not None else {}


class _PayloadField(ma.fields.Field):
    """An event's payload, dumped through the schema of its event type (PAYLOADS)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs) -> dict:
        return payload_for_partner(obj.get("type", ""), value)


PAYLOAD_DESCRIPTION = ("depends on `type`: " + ", ".join(PAYLOADS)
                        + "; see the schemas named *Payload in emergency/runs/partners.py")


class PartnerEventSchema(ma.Schema):
    """A timeline event as a partner sees it."""

    seq = ma.fields.Integer()
    type = ma.fields.String()
    at = ma.fields.String()
    actor = ma.fields.Nested(ActorSchema)
    payload = _PayloadField(metadata={"type": "object", "additionalProperties": True,
                                      "description": PAYLOAD_DESCRIPTION})


class LiveRunSchema(ma.Schema):
    id = ma.fields.Integer()
    state = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    mode = ma.fields.String()
    playbook = ma.fields.String()
    location = ma.fields.String(allow_none=True)


class PartnerLiveEventSchema(PartnerEventSchema):
    """A live (Socket.IO) event as a partner receives it."""

    run_id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    mode = ma.fields.String()
    run = ma.fields.Nested(LiveRunSchema)


class RunPlaybookSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    version = ma.fields.String()
    accountability = ma.fields.Nested(PlaybookAccountabilitySchema)


class RunCountsSchema(ma.Schema):
    alerts = ma.fields.Nested(DeliverySummarySchema)
    accountability = ma.fields.Nested(AccountabilityCountsSchema)


class LastCheckinSchema(ma.Schema):
    id = ma.fields.Integer()
    room_id = ma.fields.Integer()
    status = ma.fields.String()
    at = ma.fields.String()
    late = ma.fields.Boolean()


class CallerStateSchema(ma.Schema):
    acknowledged_at = ma.fields.String(allow_none=True)
    ack_channel = ma.fields.String(allow_none=True)
    status = ma.fields.String(allow_none=True, metadata={"description": "staff: safe or need_help"})
    last_checkin = ma.fields.Nested(LastCheckinSchema, allow_none=True)


class PartnerRunSchema(ma.Schema):
    """A run as a partner sees it through the API."""

    id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    school = ma.fields.Nested(SchoolRefSchema)
    playbook = ma.fields.Nested(RunPlaybookSchema)
    mode = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    state = ma.fields.String()
    end_reason = ma.fields.String(allow_none=True)
    end_message = ma.fields.String(allow_none=True)
    started_by = ma.fields.Nested(ActorSchema)
    ended_by = ma.fields.Nested(ActorSchema, allow_none=True)
    started_at = ma.fields.String()
    ended_at = ma.fields.String(allow_none=True)
    last_seq = ma.fields.Integer()
    superseded_by_id = ma.fields.Integer(allow_none=True)
    facts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(),
                           metadata={"description": "drill facts (e.g. secondary_exit: true, variant: tornado)"})
    checklist = ma.fields.List(ma.fields.Nested(ChecklistItemSchema))
    counts = ma.fields.Nested(RunCountsSchema)
    me = ma.fields.Nested(CallerStateSchema,
                          metadata={"description": "the caller's acknowledgement, staff status and last check-in"})


# ---- the after-action report of a real run


class ReportSchoolSchema(SchoolRefSchema):
    timezone = ma.fields.String()


class ReportPlaybookSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    version = ma.fields.String()
    compliance_category = ma.fields.String(allow_none=True)


class ReportSummarySchema(ma.Schema):
    school = ma.fields.Nested(ReportSchoolSchema)
    playbook = ma.fields.Nested(ReportPlaybookSchema)
    mode = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    state = ma.fields.String()
    end_reason = ma.fields.String(allow_none=True)
    end_message = ma.fields.String(allow_none=True)
    started_by = ma.fields.Nested(NameRoleSchema, allow_none=True)
    ended_by = ma.fields.Nested(NameRoleSchema, allow_none=True)
    started_at = ma.fields.String()
    ended_at = ma.fields.String(allow_none=True)
    started_local = ma.fields.String(allow_none=True)
    ended_local = ma.fields.String(allow_none=True)
    duration_seconds = ma.fields.Float(allow_none=True)
    duration = ma.fields.String()
    facts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(),
                           metadata={"description": "drill facts (e.g. secondary_exit: true)"})


class ReportTimelineRowSchema(ma.Schema):
    seq = ma.fields.Integer()
    at = ma.fields.String()
    local_time = ma.fields.String(allow_none=True)
    elapsed_seconds = ma.fields.Float()
    elapsed = ma.fields.String()
    type = ma.fields.String()
    actor = ma.fields.Nested(NameRoleSchema, allow_none=True)
    text = ma.fields.String(metadata={"description": "the event in words"})
    payload = _PayloadField(metadata={"type": "object", "additionalProperties": True,
                                      "description": PAYLOAD_DESCRIPTION})


class AcknowledgementRowSchema(ma.Schema):
    kind = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)
    role = ma.fields.String(allow_none=True)
    channel = ma.fields.String(allow_none=True)
    acknowledged_at = ma.fields.String(allow_none=True)
    seconds = ma.fields.Float(allow_none=True)


class ReportAlertsSchema(ma.Schema):
    total = ma.fields.Integer()
    recipients = ma.fields.Integer()
    sent = ma.fields.Integer()
    delivered = ma.fields.Integer()
    failed = ma.fields.Integer()
    pending = ma.fields.Integer()
    cancelled = ma.fields.Integer()
    by_channel = ma.fields.Dict(keys=ma.fields.String(), values=_counts(),
                                metadata={"description": "for each channel, a number for each status"})
    acknowledged = ma.fields.Integer()
    asked_to_acknowledge = ma.fields.Integer()
    ack_rate = ma.fields.Float(allow_none=True)
    median_ack_seconds = ma.fields.Float(allow_none=True)
    p90_ack_seconds = ma.fields.Float(allow_none=True)
    acknowledgements = ma.fields.List(ma.fields.Nested(AcknowledgementRowSchema))


class UnreachableRowSchema(ma.Schema):
    kind = ma.fields.String()
    name = ma.fields.String()
    role = ma.fields.String()
    channels = ma.fields.List(ma.fields.String(), metadata={"description": "channel: status"})
    reasons = ma.fields.List(ma.fields.String())


class FiguresSchema(ma.Schema):
    expected = ma.fields.Integer()
    first_checkin_at = ma.fields.String(allow_none=True)
    seconds_to_first_checkin = ma.fields.Float(allow_none=True)
    at_50_percent = ma.fields.String(allow_none=True)
    seconds_to_50_percent = ma.fields.Float(allow_none=True)
    at_90_percent = ma.fields.String(allow_none=True)
    seconds_to_90_percent = ma.fields.Float(allow_none=True)
    at_100_percent = ma.fields.String(allow_none=True)
    seconds_to_100_percent = ma.fields.Float(allow_none=True)


class CurvePointSchema(ma.Schema):
    at = ma.fields.String()
    seconds = ma.fields.Float(allow_none=True)
    reported = ma.fields.Integer()


class ReportRoomSchema(RoomCountsSchema):
    room = ma.fields.String()
    number = ma.fields.String()
    status = ma.fields.String()
    checked_in_at = ma.fields.String(allow_none=True)
    checked_in_local = ma.fields.String(allow_none=True)
    seconds_to_check_in = ma.fields.Float(allow_none=True)
    elapsed = ma.fields.String()
    last_report_at = ma.fields.String(allow_none=True)
    reports = ma.fields.Integer()
    location = ma.fields.String(allow_none=True)
    reporter = ma.fields.String(allow_none=True)


class ReportAccountabilitySchema(ma.Schema):
    available = ma.fields.Boolean()
    required = ma.fields.Boolean()
    expected = ma.fields.Integer()
    reported = ma.fields.Integer()
    percent = ma.fields.Float()
    figures = ma.fields.Nested(FiguresSchema)
    curve = ma.fields.List(ma.fields.Nested(CurvePointSchema))
    rooms = ma.fields.List(ma.fields.Nested(ReportRoomSchema))
    totals = _counts()
    note = ma.fields.String(allow_none=True)


class ReportNoteSchema(ma.Schema):
    at = ma.fields.String(allow_none=True)
    local_time = ma.fields.String(allow_none=True)
    by = ma.fields.Nested(NameRoleSchema, allow_none=True)
    kind = ma.fields.String()
    message = ma.fields.String()


class PartnerReportSchema(ma.Schema):
    """The after-action report of a real run, as a partner sees it."""

    run_id = ma.fields.Integer()
    summary = ma.fields.Nested(ReportSummarySchema)
    timeline = ma.fields.List(ma.fields.Nested(ReportTimelineRowSchema))
    alerts = ma.fields.Nested(ReportAlertsSchema)
    unreachable = ma.fields.List(ma.fields.Nested(UnreachableRowSchema))
    accountability = ma.fields.Nested(ReportAccountabilitySchema)
    notes = ma.fields.List(ma.fields.Nested(ReportNoteSchema))
    generated_at = ma.fields.String()


# ---- accountability as partners read it through the API (real runs at the schools they cover)


class PartnerCheckinSchema(RoomCountsSchema):
    """A room's report: counts, where, by whom. Student names only as the run's playbook allows
    (`accountability.partner_missing_names`: the names of missing students); never injured
    students' names, never the teacher's note."""

    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    room_id = ma.fields.Integer()
    room = ma.fields.Nested(RoomRefSchema)
    status = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    late = ma.fields.Boolean()
    channel = ma.fields.String()
    reporter = ma.fields.Nested(PersonRefSchema)
    reported_at = ma.fields.String()
    superseded_by_id = ma.fields.Integer(allow_none=True)
    latest = ma.fields.Boolean()
    missing_students = ma.fields.List(ma.fields.String(), metadata={
        "description": "only when the playbook says accountability.partner_missing_names"})
    expected = ma.fields.Boolean()
    reports = ma.fields.Integer()
    first_reported_at = ma.fields.String(allow_none=True)
    attention = ma.fields.String()


class PartnerStaffStatusSchema(ma.Schema):
    """A staff member's "safe" or "need help", without the free-text note."""

    run_id = ma.fields.Integer()
    person = ma.fields.Nested(PersonRefSchema)
    status = ma.fields.String()
    channel = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    room = ma.fields.Nested(RoomRefSchema, allow_none=True)
    updated_at = ma.fields.String()


class PartnerStaffBoardSchema(ma.Schema):
    run_id = ma.fields.Integer()
    safe = ma.fields.Integer()
    need_help = ma.fields.Integer()
    staff = ma.fields.List(ma.fields.Nested(PartnerStaffStatusSchema))


class PartnerRollupSchema(ma.Schema):
    """The live roll-up of a real run as a partner reads it."""

    run_id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    mode = ma.fields.String()
    state = ma.fields.String()
    required = ma.fields.Boolean()
    expected_rule = ma.fields.String()
    expected = ma.fields.Integer()
    reported = ma.fields.Integer()
    reported_rooms = ma.fields.Integer()
    percent_reported = ma.fields.Float()
    unreported_rooms = ma.fields.List(ma.fields.Nested(RoomRefSchema))
    totals = ma.fields.Nested(RoomCountsSchema)
    need_help = ma.fields.List(ma.fields.Nested(PartnerCheckinSchema))
    staff_needing_help = ma.fields.List(ma.fields.Nested(PartnerStaffStatusSchema))
    rooms = ma.fields.List(ma.fields.Nested(PartnerCheckinSchema))
    started_at = ma.fields.String()
    ended_at = ma.fields.String(allow_none=True)
    elapsed_seconds = ma.fields.Float()
    fully_accounted_at = ma.fields.String(allow_none=True)
    seconds_to_fully_accounted = ma.fields.Float(allow_none=True)
    figures = ma.fields.Nested(FiguresSchema)
    names_included = ma.fields.Boolean()


class PartnerAcksSchema(ma.Schema):
    """How quickly the run's recipients acknowledged, in numbers."""

    first_alert_at = ma.fields.String(allow_none=True)
    expected = ma.fields.Integer()
    count = ma.fields.Integer()
    by_channel = _counts()
    median_seconds = ma.fields.Float(allow_none=True)
    p90_seconds = ma.fields.Float(allow_none=True)


class PartnerRunAlertsSchema(ma.Schema):
    """A run's alerts as a partner reads them: counts and timing, no recipient and no number."""

    run_id = ma.fields.Integer()
    mode = ma.fields.String()
    state = ma.fields.String()
    summary = ma.fields.Nested(DeliverySummarySchema)
    queue = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(QueueChannelSchema),
                           metadata={"description": "for each channel, the run's place in the send queue"})
    acks = ma.fields.Nested(PartnerAcksSchema)


class PartnerMissingStudentSchema(ma.Schema):
    """A missing student, for partners when the playbook allows it: who, and where they were expected."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    grade = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    expected_room_id = ma.fields.Integer(allow_none=True)
    room_id = ma.fields.Integer(allow_none=True, metadata={"description": "the room that reported the student"})
    reported_at = ma.fields.String(allow_none=True)


class PartnerSchoolRosterSchema(ma.Schema):
    """The school's students in a real run, as partners read them: counts, and the missing students'
    names only when the playbook says `accountability.partner_missing_names`."""

    run_id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    period = ma.fields.String(allow_none=True)
    day_type = ma.fields.String(allow_none=True)
    names_included = ma.fields.Boolean()
    counts = _counts()
    rooms = ma.fields.List(ma.fields.Nested(RoomRefSchema))
    missing = ma.fields.List(ma.fields.Nested(PartnerMissingStudentSchema))


_LIVE_EVENT = PartnerLiveEventSchema()
_EVENT = PartnerEventSchema()
_RUN = PartnerRunSchema()
_REPORT = PartnerReportSchema()


def live_event_for_partner(envelope: dict) -> dict:
    """A live event's envelope as partners receive it."""
    return _LIVE_EVENT.dump(envelope)


def event_for_partner(view: dict) -> dict:
    """A timeline event (API view) as partners see it."""
    return _EVENT.dump(view)


def run_for_partner(view: dict) -> dict:
    """A run (API view) as partners see it."""
    return _RUN.dump(view)


def report_for_partner(report: dict) -> dict:
    """An after-action report as partners see it."""
    return _REPORT.dump(report)


_CHECKIN, _ROLLUP = PartnerCheckinSchema(), PartnerRollupSchema()
_STAFF_BOARD, _RUN_ALERTS = PartnerStaffBoardSchema(), PartnerRunAlertsSchema()
_SCHOOL_ROSTER = PartnerSchoolRosterSchema()


def checkin_for_partner(view: dict) -> dict:
    """A room's check-in (API view) as partners see it."""
    return _CHECKIN.dump(view)


def rollup_for_partner(view: dict) -> dict:
    """A run's live roll-up as partners see it."""
    return _ROLLUP.dump(view)


def staff_board_for_partner(view: dict) -> dict:
    """Who is safe and who needs help, as partners see it."""
    return _STAFF_BOARD.dump(view)


def school_roster_for_partner(view: dict) -> dict:
    """A run's student list (counts; missing names if the playbook allows), as partners see it."""
    return _SCHOOL_ROSTER.dump(view)


def run_alerts_for_partner(view: dict) -> dict:
    """A run's alerts, as partners see them."""
    return _RUN_ALERTS.dump(view)
