"""Classroom check-ins, the live roll-up and staff status of a run."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.accountability import checkins, rollup, staff
from emergency.accountability.schemas import (
    CheckinListSchema,
    CheckinOutSchema,
    CheckinQuerySchema,
    CheckinSchema,
    CurveSchema,
    OpenItemsSchema,
    RollupSchema,
    StaffBoardSchema,
    StaffStatusOutSchema,
    StaffStatusSchema,
)
from emergency.db import db, reads_outside_transaction
from emergency.web import current_principal, idempotency_key, staff_principal

blp = Blueprint("accountability", __name__, url_prefix="/api/v1", description="Check-ins and the roll-up")




@blp.route("/runs/<int:run_id>/checkins")
class Checkins(MethodView):
    @blp.arguments(CheckinQuerySchema, location="query")
    @blp.response(200, CheckinListSchema)
    def get(self, args, run_id: int):
        """Every check-in of the run, superseded ones included, newest first (names for admins only)."""
        principal = current_principal()
        return {"checkins": checkins.list_checkins(db.session, principal, run_id, args.get("room_id"))}

    @reads_outside_transaction  # outermost: the token lookup in the arguments' parser is a read too
    @blp.arguments(CheckinSchema)
    @blp.response(201, CheckinOutSchema)
    @blp.alt_response(200, schema=CheckinOutSchema, description="The same Idempotency-Key was used before")
    def post(self, body, run_id: int):
        """Report a room: counts, status, location (send an Idempotency-Key so an offline replay counts once)."""
        principal = staff_principal()
        view, created = checkins.check_in(db.session, principal, run_id, checkins.CheckinRequest(**body),
                                         idempotency_key=idempotency_key())
        return view, 201 if created else 200


@blp.route("/runs/<int:run_id>/accountability")
class Accountability(MethodView):
    @blp.response(200, RollupSchema)
    def get(self, run_id: int):
        """The roll-up: expected, reported and unreported rooms, totals, who needs help, the figures."""
        body = rollup.rollup_json(db.session, current_principal(), run_id, current_app.extensions["rollup_cache"])
        return Response(body, mimetype="application/json")


@blp.route("/runs/<int:run_id>/open-items")
class OpenItems(MethodView):
    @blp.response(200, OpenItemsSchema)
    def get(self, run_id: int):
        """What is still open, for the principal to see before the all-clear (school admins)."""
        return rollup.open_items(db.session, staff_principal(), run_id)


@blp.route("/runs/<int:run_id>/accountability/curve")
class Curve(MethodView):
    @blp.response(200, CurveSchema)
    def get(self, run_id: int):
        """Rooms reported over time: one point per room's first report."""
        return rollup.run_curve(db.session, current_principal(), run_id)


@blp.route("/runs/<int:run_id>/status")
class StaffStatus(MethodView):
    @blp.response(200, StaffBoardSchema)
    def get(self, run_id: int):
        """Who said "I am safe" and who said "I need help"."""
        return staff.staff_board(db.session, current_principal(), run_id)

    @blp.arguments(StaffStatusSchema)
    @blp.response(200, StaffStatusOutSchema)
    def post(self, body, run_id: int):
        """Say "I am safe" or "I need help" (the school's admins are alerted at once)."""
        row = staff.set_staff_status(db.session, staff_principal(), run_id, body["status"],
                                       note=body.get("note"), location=body.get("location"))
        return staff.staff_view(row, notes=True)
