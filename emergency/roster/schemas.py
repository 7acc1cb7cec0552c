"""What the student roster API accepts and returns."""

import marshmallow as ma

from emergency.accountability.schemas import CheckinOutSchema, CountsSchema
from emergency.roster.service import EXCEPTION_STATUSES, EXTRA_STATUSES
from emergency.schema_fields import ActorSchema, StrictBoolean

MAX_STUDENTS = 5000


class StudentReportSchema(ma.Schema):
    student_id = ma.fields.Integer(required=True, strict=True)
    status = ma.fields.String(required=True)


class StudentCheckinSchema(ma.Schema):
    room_id = ma.fields.Integer(load_default=None, allow_none=True, strict=True,
                                metadata={"description": "default: the room of the class you teach now, "
                                                         "else your home room"})
    exceptions = ma.fields.List(
        ma.fields.Nested(StudentReportSchema), load_default=list, validate=ma.validate.Length(max=MAX_STUDENTS),
        metadata={"description": f"students of the room's roster who are not simply present: status one of "
                                 f"{', '.join(EXCEPTION_STATUSES)}; everyone else on the roster is present"})
    extras = ma.fields.List(ma.fields.Nested(StudentReportSchema), load_default=list,
                            validate=ma.validate.Length(max=MAX_STUDENTS),
                            metadata={"description": "students with you who are not on the room's roster: "
                                                     f"status one of {', '.join(EXTRA_STATUSES)}"})
    need_help = StrictBoolean(load_default=False)
    location = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=200))
    note = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=1000))

    @ma.validates_schema
    def _each_student_once(self, data, **kwargs):
        ids = [item["student_id"] for item in data.get("exceptions", []) + data.get("extras", [])]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ma.ValidationError(f"each student at most once; repeated: {', '.join(map(str, twice))}",
                                     field_name="exceptions")


class RosterRoomSchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    label = ma.fields.String()


class StudentSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    grade = ma.fields.String()
    expected_room = ma.fields.Nested(RosterRoomSchema, allow_none=True,
                                     metadata={"description": "null: expected nowhere known (unknown)"})


class RoomStudentSchema(StudentSchema):
    status = ma.fields.String(allow_none=True, metadata={"description": "as this room last reported it"})
    reported_by_room = ma.fields.Nested(RosterRoomSchema, allow_none=True,
                                        metadata={"description": "the room whose report is the latest"})


class RoomRosterSchema(ma.Schema):
    run_id = ma.fields.Integer()
    room = ma.fields.Nested(RosterRoomSchema)
    period = ma.fields.String(allow_none=True, metadata={"description": "null: outside class time (homerooms)"})
    day_type = ma.fields.String(allow_none=True)
    students = ma.fields.List(ma.fields.Nested(RoomStudentSchema))
    extras = ma.fields.List(ma.fields.Nested(RoomStudentSchema))


class RoomQuerySchema(ma.Schema):
    room_id = ma.fields.Integer()


class SearchQuerySchema(ma.Schema):
    q = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=100))


class SearchSchema(ma.Schema):
    run_id = ma.fields.Integer()
    students = ma.fields.List(ma.fields.Nested(StudentSchema))


class StudentCountsSchema(ma.Schema):
    students = ma.fields.Integer()
    present = ma.fields.Integer()
    injured = ma.fields.Integer()
    absent = ma.fields.Integer()
    missing = ma.fields.Integer()
    not_reported = ma.fields.Integer()
    flagged = ma.fields.Integer()
    unaccounted = ma.fields.Integer(metadata={"description": "missing + not reported"})


# The school's list is dumped as plain rows (2,000 nested objects through marshmallow cost most of a
# second); this is their shape, for the OpenAPI description.
SCHOOL_STUDENT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "grade": {"type": "string"},
    "status": {"type": "string", "enum": ["accounted", "injured", "absent", "missing", "not_reported"]},
    "expected_room_id": {"type": "integer", "nullable": True, "description": "null: expected in an unknown room"},
    "room_id": {"type": "integer", "nullable": True, "description": "the room whose report is the latest"},
    "reported_at": {"type": "string", "nullable": True},
    "flagged": {"type": "boolean", "description": "reported by two rooms; the latest report is shown"},
    "conflict_room_id": {"type": "integer", "nullable": True, "description": "the other room"},
    "conflict_status": {"type": "string", "nullable": True, "description": "what the other room said"}}}


def _student_rows(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.Raw(metadata=SCHOOL_STUDENT), metadata={"description": description})


class SchoolRosterSchema(ma.Schema):
    run_id = ma.fields.Integer()
    school_id = ma.fields.Integer()
    period = ma.fields.String(allow_none=True)
    day_type = ma.fields.String(allow_none=True)
    counts = ma.fields.Nested(StudentCountsSchema)
    names_included = ma.fields.Boolean()
    rooms = ma.fields.List(ma.fields.Nested(RosterRoomSchema), metadata={"description": "the rooms the rows name"})
    students = _student_rows("admins only: every student of the school, by family name")
    unaccounted = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "admins only: ids of the students missing or not reported (status not_reported: nobody "
                       "reported them), in the order of `students`"})
    flagged = ma.fields.List(ma.fields.Integer(), metadata={"description": "admins only: ids of the students "
                                                                           "reported by two rooms"})
    missing = _student_rows("partners in a real run, when the playbook allows it")


class StudentCheckinOutSchema(CheckinOutSchema):
    students = ma.fields.Nested(CountsSchema, metadata={"description": "the counts derived from the students"})


class AccessLogQuerySchema(ma.Schema):
    school_id = ma.fields.Integer()
    since = ma.fields.AwareDateTime()
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(("json", "csv")))


class AccessEntrySchema(ma.Schema):
    at = ma.fields.String()
    account_id = ma.fields.Integer()
    actor = ma.fields.Nested(ActorSchema)
    school_id = ma.fields.Integer()
    run_id = ma.fields.Integer(allow_none=True)
    what = ma.fields.String(metadata={"description": "school_roster, school_missing, room_roster, student_search"})
    students = ma.fields.Integer(metadata={"description": "how many students the answer named"})


class AccessLogSchema(ma.Schema):
    entries = ma.fields.List(ma.fields.Nested(AccessEntrySchema))
