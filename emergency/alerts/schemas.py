"""How acknowledgements, a run's alerts and SMS opt-outs look in the API."""

from __future__ import annotations

import marshmallow as ma

from emergency.runs.partners import DeliverySummarySchema
from emergency.schema_fields import described


class AckSchema(ma.Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "person or partner"})
    person_id = ma.fields.Integer(allow_none=True)
    partner_id = ma.fields.Integer(allow_none=True)
    alert_id = ma.fields.Integer(allow_none=True)
    channel = ma.fields.String(metadata={"description": "app, push (the notification's Acknowledge), sms or voice"})
    acknowledged_at = ma.fields.String()
    created = ma.fields.Boolean(metadata={"description": "false when this recipient had already acknowledged"})


class AlertRowSchema(ma.Schema):
    id = ma.fields.Integer()
    occasion = ma.fields.String(metadata={"description": "start, update, all_clear, cancel, escalation, unreachable"})
    channel = ma.fields.String(metadata={"description": "push, sms or voice"})
    status = ma.fields.String()
    provider_status = ma.fields.String(allow_none=True)
    error_code = ma.fields.Integer(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    to_number = ma.fields.String(allow_none=True, metadata={"description": "masked unless the caller is an admin"})
    queued_at = ma.fields.String(allow_none=True)
    sent_at = ma.fields.String(allow_none=True)
    delivered_at = ma.fields.String(allow_none=True)
    acknowledged_at = ma.fields.String(allow_none=True)
    ack_channel = ma.fields.String(allow_none=True)


class RecipientSchema(ma.Schema):
    kind = ma.fields.String()
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()
    to_number = ma.fields.String(allow_none=True, metadata={"description": "masked unless the caller is an admin"})
    opted_out = ma.fields.Boolean(metadata={"description": "replied STOP: gets calls instead of texts"})
    acknowledged_at = ma.fields.String(allow_none=True)
    ack_channel = ma.fields.String(allow_none=True)
    ack_seconds = ma.fields.Float(allow_none=True, metadata={"description": "seconds from the first alert"})
    alerts = ma.fields.List(ma.fields.Nested(AlertRowSchema))


class ChannelQueueSchema(ma.Schema):
    waiting = ma.fields.Integer(metadata={"description": "the run's alerts on this channel not yet sent"})
    ahead = ma.fields.Integer(metadata={"description": "other runs' alerts that will be sent before its next one"})
    eta_seconds = ma.fields.Float(allow_none=True, metadata={
        "description": "seconds to send the rest at the configured rate; null when sends are not paced"})


class QueueSchema(ma.Schema):
    sms = ma.fields.Nested(ChannelQueueSchema)
    voice = ma.fields.Nested(ChannelQueueSchema)
    push = ma.fields.Nested(ChannelQueueSchema, metadata={
        "description": "Web Push notifications to devices; not paced, so eta_seconds is null"})


class RunAlertsSchema(ma.Schema):
    run_id = ma.fields.Integer()
    mode = ma.fields.String()
    state = ma.fields.String()
    summary = ma.fields.Nested(DeliverySummarySchema,
                               metadata={"description": "counts by status and channel, and acknowledgements"})
    queue = ma.fields.Nested(QueueSchema, metadata={
        "description": "the run's place in the district-wide outbox: real runs first, round robin by run"})
    acks = described("acknowledgement timing: count, median_seconds, p90_seconds (numbers, null before any)")
    recipients = ma.fields.List(ma.fields.Nested(RecipientSchema))
    unreachable = ma.fields.List(described("name, role, kind"))
    opted_out = ma.fields.List(described("name, role, kind"))


class OptOutSchema(ma.Schema):
    kind = ma.fields.String()
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()
    number = ma.fields.String(metadata={"description": "masked"})
    keyword = ma.fields.String()
    opted_out_at = ma.fields.String()


class OptOutListSchema(ma.Schema):
    school_id = ma.fields.Integer()
    opt_outs = ma.fields.List(ma.fields.Nested(OptOutSchema))
