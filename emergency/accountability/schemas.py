"""What the accountability API accepts and returns."""

import marshmallow as ma

from emergency.accountability.models import CHECKIN_STATUSES, MAX_COUNT, STAFF_STATUSES
from emergency.runs.partners import CurvePointSchema, FiguresSchema
from emergency.schema_fields import PersonRefSchema, RoomRefSchema, StrictBoolean, counts, described

MAX_NAMES = 200


def _count(description: str) -> ma.fields.Integer:
    return ma.fields.Integer(load_default=0, strict=True, validate=ma.validate.Range(min=0, max=MAX_COUNT),
                             metadata={"description": description})


def _names(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=100)), load_default=None,
                          allow_none=True, validate=ma.validate.Length(max=MAX_NAMES),
                          metadata={"description": description})


class CheckinSchema(ma.Schema):
    room_id = ma.fields.Integer(load_default=None, allow_none=True, strict=True,
                                metadata={"description": "the room reported for; default: the caller's home room"})
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(CHECKIN_STATUSES))
    present = _count("students the teacher can see")
    absent = _count("students not in school today")
    missing = _count("students who should be here and are not")
    injured = _count("injured students (also counted in present)")
    extra = _count("students from other rooms who are here (also counted in present)")
    location = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=200),
                                metadata={"description": "a room of the school or a playbook assembly point"})
    missing_students = _names("names of missing students (optional; admins only ever see them)")
    injured_students = _names("names of injured students (optional; admins only ever see them)")
    note = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=1000))
    room_empty = StrictBoolean(load_default=False, metadata={
        "description": "true: nobody is with me (a planning period); needed for a report of 0 students"})


class CountsSchema(ma.Schema):
    """A room's report in numbers (the counts of a check-in)."""

    present = ma.fields.Integer()
    absent = ma.fields.Integer()
    missing = ma.fields.Integer()
    injured = ma.fields.Integer()
    extra = ma.fields.Integer()


class CheckinOutSchema(CountsSchema):
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
    has_note = ma.fields.Boolean()
    names_purged = ma.fields.Boolean()
    missing_students = ma.fields.List(ma.fields.String(), metadata={"description": "admins only"})
    injured_students = ma.fields.List(ma.fields.String(), metadata={"description": "admins only"})
    note = ma.fields.String(allow_none=True, metadata={"description": "admins only"})
    expected = ma.fields.Boolean(metadata={"description": "roll-up only: the room is an expected room"})
    reports = ma.fields.Integer(metadata={"description": "roll-up only: how many reports the room sent"})
    first_reported_at = ma.fields.String(metadata={"description": "roll-up only"})
    attention = ma.fields.String(metadata={"description": "roll-up only: need_help, missing, injured or accounted"})


# The roll-up's room lists stay plain mappings: a thousand nested dumps would double the response
# time of the board's most frequent read.
_ROOM = "shaped like CheckinOut (plus expected, reports, first_reported_at, attention)"


class CheckinQuerySchema(ma.Schema):
    room_id = ma.fields.Integer()


class CheckinListSchema(ma.Schema):
    checkins = ma.fields.List(ma.fields.Nested(CheckinOutSchema))


class RollupSchema(ma.Schema):
    run_id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    mode = ma.fields.String()
    state = ma.fields.String()
    required = ma.fields.Boolean()
    expected_rule = ma.fields.String()
    expected = ma.fields.Integer()
    reported = ma.fields.Integer(metadata={"description": "expected rooms that reported"})
    reported_rooms = ma.fields.Integer(metadata={"description": "all rooms that reported, expected or not"})
    percent_reported = ma.fields.Float()
    unreported_rooms = ma.fields.List(ma.fields.Nested(RoomRefSchema))
    totals = counts("present, absent, missing, injured, extra: the run's totals")
    need_help = ma.fields.List(described(f"{_ROOM}; rooms whose latest status is need_help"))
    staff_needing_help = ma.fields.List(ma.fields.Nested(lambda: StaffStatusOutSchema()))
    rooms = ma.fields.List(described(f"{_ROOM}; the latest check-in of each reported room"))
    started_at = ma.fields.String()
    ended_at = ma.fields.String(allow_none=True)
    elapsed_seconds = ma.fields.Float()
    fully_accounted_at = ma.fields.String(allow_none=True)
    seconds_to_fully_accounted = ma.fields.Float(allow_none=True)
    figures = ma.fields.Nested(FiguresSchema)
    names_included = ma.fields.Boolean()


class OpenRoomSchema(ma.Schema):
    room = ma.fields.Nested(RoomRefSchema)
    status = ma.fields.String()
    attention = ma.fields.String()
    missing = ma.fields.Integer()
    injured = ma.fields.Integer()
    reporter = ma.fields.Nested(PersonRefSchema)
    reported_at = ma.fields.String()
    missing_students = ma.fields.List(ma.fields.String())
    injured_students = ma.fields.List(ma.fields.String())


class AskedSchema(ma.Schema):
    kind = ma.fields.String(metadata={"description": "person or partner"})
    id = ma.fields.Integer()
    name = ma.fields.String(allow_none=True)


class OpenItemsSchema(ma.Schema):
    run_id = ma.fields.Integer()
    state = ma.fields.String()
    anything_open = ma.fields.Boolean(metadata={"description": "false: nothing below is open"})
    unreported_rooms = ma.fields.List(ma.fields.Nested(RoomRefSchema))
    rooms_needing_help = ma.fields.List(ma.fields.Nested(OpenRoomSchema))
    rooms_with_missing = ma.fields.List(ma.fields.Nested(OpenRoomSchema))
    rooms_with_injured = ma.fields.List(ma.fields.Nested(OpenRoomSchema))
    missing = ma.fields.Integer(metadata={"description": "students reported missing"})
    injured = ma.fields.Integer(metadata={"description": "students reported injured"})
    staff_needing_help = ma.fields.List(ma.fields.Nested(lambda: StaffStatusOutSchema()))
    unacknowledged = ma.fields.List(ma.fields.Nested(AskedSchema),
                                    metadata={"description": "asked to acknowledge, not confirmed"})


class CurveSchema(ma.Schema):
    run_id = ma.fields.Integer()
    started_at = ma.fields.String()
    points = ma.fields.List(ma.fields.Nested(CurvePointSchema))


class StaffStatusSchema(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(STAFF_STATUSES))
    note = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=1000))
    location = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=200))


class StaffBoardSchema(ma.Schema):
    run_id = ma.fields.Integer()
    safe = ma.fields.Integer()
    need_help = ma.fields.Integer()
    staff = ma.fields.List(ma.fields.Nested(lambda: StaffStatusOutSchema()))


class StaffStatusOutSchema(ma.Schema):
    run_id = ma.fields.Integer()
    person = ma.fields.Nested(PersonRefSchema)
    status = ma.fields.String()
    channel = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    room = ma.fields.Nested(RoomRefSchema, allow_none=True)
    updated_at = ma.fields.String()
    note = ma.fields.String(allow_none=True)
