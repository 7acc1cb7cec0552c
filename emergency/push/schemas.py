"""How push subscriptions, the push settings and a school's push coverage look in the API."""

from __future__ import annotations

import marshmallow as ma


class KeysSchema(ma.Schema):
    p256dh = ma.fields.String(required=True, validate=ma.validate.Length(max=200))
    auth = ma.fields.String(required=True, validate=ma.validate.Length(max=64))


class SubscriptionInSchema(ma.Schema):
    """What `PushSubscription.toJSON()` gives in the browser, plus the user agent."""

    endpoint = ma.fields.String(required=True, validate=ma.validate.Length(min=10, max=2000))
    keys = ma.fields.Nested(KeysSchema, required=True)
    user_agent = ma.fields.String(load_default="", validate=ma.validate.Length(max=300))
    expirationTime = ma.fields.Raw(load_default=None, allow_none=True)  # noqa: N815 (the browser's name)


class SubscriptionSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    push_service = ma.fields.String(metadata={"description": "the push service's host (the endpoint stays secret)"})
    user_agent = ma.fields.String()
    created_at = ma.fields.String()
    this_device = ma.fields.Boolean(metadata={"description": "registered with the caller's current login"})


class PushConfigSchema(ma.Schema):
    enabled = ma.fields.Boolean()
    public_key = ma.fields.String(allow_none=True,
                                  metadata={"description": "VAPID public key: the browser's applicationServerKey"})


class StaffNameSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()


class CoverageSchema(ma.Schema):
    school_id = ma.fields.Integer()
    staff = ma.fields.Integer(metadata={"description": "active staff of the school"})
    staff_with_push = ma.fields.Integer()
    devices = ma.fields.Integer()
    without_push = ma.fields.List(ma.fields.Nested(StaffNameSchema))


class ReceiptSchema(ma.Schema):
    receipt = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=64),
                               metadata={"description": "from the push payload; or send the recipient's token"})


class ReceivedSchema(ma.Schema):
    alert_id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    status = ma.fields.String()
    delivered_at = ma.fields.String(allow_none=True)
