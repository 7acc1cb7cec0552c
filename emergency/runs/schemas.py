import marshmallow as ma

from emergency.runs.partners import PAYLOAD_DESCRIPTION, PartnerRunSchema
from emergency.schema_fields import PageMetaSchema, StrictBoolean, described

MODES = ("drill", "real")


class StartRunSchema(ma.Schema):
    school_id = ma.fields.Integer(required=True)
    playbook = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(MODES))
    confirm = StrictBoolean(load_default=False)
    location = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=200))
    note = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=2000))
    variant = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=64))
    facts = ma.fields.Dict(load_default=None, allow_none=True,
                           metadata={"description": "drill facts for compliance, e.g. secondary_exit"})


class UpdateSchema(ma.Schema):
    message = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=600))


class AllClearSchema(ma.Schema):
    message = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=600))


class CancelSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=600))


class ChangeActionSchema(ma.Schema):
    playbook = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    location = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=200))
    variant = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=64))


class RunQuerySchema(ma.Schema):
    school_id = ma.fields.Integer()
    state = ma.fields.String(validate=ma.validate.OneOf(("active", "ended", "cancelled", "superseded")))
    mode = ma.fields.String(validate=ma.validate.OneOf(MODES))
    start = ma.fields.AwareDateTime(metadata={"description": "started at or after (ISO 8601 with zone)"})
    end = ma.fields.AwareDateTime(metadata={"description": "started before (ISO 8601 with zone)"})
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


class TimelineQuerySchema(ma.Schema):
    after_seq = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    limit = ma.fields.Integer(load_default=500, validate=ma.validate.Range(min=1, max=5000))


class RunSchema(PartnerRunSchema):
    """A run as staff see it: today every field partners see, and nothing more."""


class RunPageSchema(ma.Schema):
    runs = ma.fields.List(ma.fields.Nested(RunSchema))
    meta = ma.fields.Nested(PageMetaSchema)


class EventSchema(ma.Schema):
    seq = ma.fields.Integer()
    type = ma.fields.String()
    at = ma.fields.String()
    actor = described("who: kind (person, partner, system, sms), and id, name, role where known")
    payload = described(PAYLOAD_DESCRIPTION)


class TimelineSchema(ma.Schema):
    run_id = ma.fields.Integer()
    last_seq = ma.fields.Integer()
    events = ma.fields.List(ma.fields.Nested(EventSchema))


class ChecklistTickSchema(ma.Schema):
    step = ma.fields.Integer(required=True, strict=True, metadata={"description": "the step's index in the playbook"})
    done = StrictBoolean(load_default=True, metadata={"description": "false unticks it"})


class NameAtSchema(ma.Schema):
    name = ma.fields.String(allow_none=True)
    at = ma.fields.String()


class ChecklistStepSchema(ma.Schema):
    index = ma.fields.Integer()
    step = ma.fields.String()
    role = ma.fields.String()
    done = ma.fields.Boolean(metadata={"description": "the caller ticked it"})
    done_at = ma.fields.String(allow_none=True)
    done_by = ma.fields.List(ma.fields.Nested(NameAtSchema), metadata={"description": "everyone who ticked it"})


class ChecklistSchema(ma.Schema):
    run_id = ma.fields.Integer()
    roles = ma.fields.List(ma.fields.String())
    steps = ma.fields.List(ma.fields.Nested(ChecklistStepSchema))
