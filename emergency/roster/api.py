"""Student rosters in a run: a room's expected students, student search, student-level check-in,
the school's unaccounted list, and the §2-d access log."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.db import db
from emergency.roster import service
from emergency.roster.schemas import (
    AccessLogQuerySchema,
    AccessLogSchema,
    RoomQuerySchema,
    RoomRosterSchema,
    SchoolRosterSchema,
    SearchQuerySchema,
    SearchSchema,
    StudentCheckinOutSchema,
    StudentCheckinSchema,
)
from emergency.web import current_principal, idempotency_key, staff_principal

blp = Blueprint("roster", __name__, url_prefix="/api/v1", description="Student rosters and accountability by name")


@blp.route("/runs/<int:run_id>/roster")
class SchoolRoster(MethodView):
    @blp.response(200, SchoolRosterSchema)
    def get(self, run_id: int):
        """Every student of the school with a status, the flagged and the unaccounted (admins; partners: counts)."""
        return service.school_roster(db.session, current_principal(), run_id)


@blp.route("/runs/<int:run_id>/roster/room")
class RoomRoster(MethodView):
    @blp.arguments(RoomQuerySchema, location="query")
    @blp.response(200, RoomRosterSchema)
    def get(self, args, run_id: int):
        """The students a room expects now, pre-filled present (default room: the class you teach now)."""
        return service.room_roster(db.session, staff_principal(), run_id, args.get("room_id"))


@blp.route("/runs/<int:run_id>/roster/students")
class StudentSearch(MethodView):
    @blp.arguments(SearchQuerySchema, location="query")
    @blp.response(200, SearchSchema)
    def get(self, args, run_id: int):
        """Find a student of the school by name, to add one who is with you but not on your roster."""
        return service.search_students(db.session, staff_principal(), run_id, args["q"])


@blp.route("/runs/<int:run_id>/roster/checkins")
class StudentCheckins(MethodView):
    @blp.arguments(StudentCheckinSchema)
    @blp.response(201, StudentCheckinOutSchema)
    @blp.alt_response(200, schema=StudentCheckinOutSchema, description="The same Idempotency-Key was used before")
    def post(self, body, run_id: int):
        """Report a room by student: the exceptions and the extras; the counts are derived."""
        request = service.StudentCheckin(
            room_id=body["room_id"], need_help=body["need_help"], location=body["location"], note=body["note"],
            exceptions={item["student_id"]: item["status"] for item in body["exceptions"]},
            extras={item["student_id"]: item["status"] for item in body["extras"]})
        view, created = service.check_in_students(db.session, staff_principal(), run_id, request,
                                                  idempotency_key=idempotency_key())
        return view, 201 if created else 200


@blp.route("/privacy/student-data-reads")
class AccessLog(MethodView):
    @blp.arguments(AccessLogQuerySchema, location="query")
    @blp.response(200, AccessLogSchema)
    @blp.doc(responses={"200": {"description": "The reads, as JSON or (format=csv) as a CSV file", "content": {
        "application/json": {"schema": AccessLogSchema},
        "text/csv": {"schema": {"type": "string", "description": "format=csv: one read per line"}}}}})
    def get(self, args):
        """Who read student-level lists, when, in which run (admins; ?format=csv to export)."""
        entries = service.access_log(db.session, current_principal(), school_id=args.get("school_id"),
                                     since=args.get("since"))
        if args["format"] == "csv":
            return Response(service.access_log_csv(entries), mimetype="text/csv", headers={
                "Content-Disposition": 'attachment; filename="student-data-reads.csv"'})
        return {"entries": entries}
