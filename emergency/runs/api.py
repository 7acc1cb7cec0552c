"""Drills and real emergencies: start, change, update, end, cancel, read, timeline."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.db import db
from emergency.runs import checklist, service, timeline
from emergency.runs.schemas import (
    AllClearSchema,
    CancelSchema,
    ChangeActionSchema,
    ChecklistSchema,
    ChecklistTickSchema,
    RunPageSchema,
    RunQuerySchema,
    RunSchema,
    StartRunSchema,
    TimelineQuerySchema,
    TimelineSchema,
    UpdateSchema,
)
from emergency.runs.views import event_view, run_view
from emergency.web import current_principal, idempotency_key, page_meta, staff_principal

blp = Blueprint("runs", __name__, url_prefix="/api/v1", description="Drills and real emergencies")


def playbooks():
    return current_app.extensions["playbooks"]




@blp.route("/runs")
class Runs(MethodView):
    @blp.arguments(RunQuerySchema, location="query")
    @blp.response(200, RunPageSchema)
    def get(self, args):
        """Runs in the caller's scope, newest first; filter by school, state, mode and start date."""
        principal = current_principal()
        rows, total = service.list_runs(db.session, principal, school_id=args.get("school_id"),
                                        state=args.get("state"), mode=args.get("mode"),
                                        started_from=args.get("start"), started_to=args.get("end"),
                                        page=args["page"], per_page=args["per_page"])
        return {"runs": [run_view(db.session, principal, r) for r in rows],
                "meta": page_meta(total, args["page"], args["per_page"])}

    @blp.arguments(StartRunSchema)
    @blp.response(201, RunSchema)
    @blp.alt_response(200, schema=RunSchema, description="The same Idempotency-Key was used before")
    def post(self, body):
        """Start a drill or a real emergency (send an Idempotency-Key header so a retry is safe)."""
        principal = staff_principal()
        run, created = service.start_run(db.session, principal, service.StartRequest(**body), playbooks(),
                                         idempotency_key=idempotency_key())
        return run_view(db.session, principal, run), 201 if created else 200


@blp.route("/runs/<int:run_id>")
class RunOne(MethodView):
    @blp.response(200, RunSchema)
    def get(self, run_id: int):
        """One run: state, playbook, mode, who started it and when, and the counts."""
        principal = current_principal()
        return run_view(db.session, principal, service.get_run(db.session, principal, run_id))


@blp.route("/runs/<int:run_id>/timeline")
class Timeline(MethodView):
    @blp.arguments(TimelineQuerySchema, location="query")
    @blp.response(200, TimelineSchema)
    def get(self, args, run_id: int):
        """Timeline events after `after_seq`, in order (a reconnecting client fills its gap here)."""
        principal = current_principal()
        run = service.get_run(db.session, principal, run_id)
        events = timeline.events_after(db.session, run.id, args["after_seq"], args["limit"])
        return {"run_id": run.id, "last_seq": run.last_seq, "events": [event_view(principal, e) for e in events]}


@blp.route("/runs/<int:run_id>/updates")
class Updates(MethodView):
    @blp.arguments(UpdateSchema)
    @blp.response(200, RunSchema)
    def post(self, body, run_id: int):
        """Send an update to everyone the run concerns."""
        principal = staff_principal()
        run = service.post_update(db.session, principal, run_id, body["message"])
        return run_view(db.session, principal, run)


@blp.route("/runs/<int:run_id>/action")
class Action(MethodView):
    @blp.arguments(ChangeActionSchema)
    @blp.response(200, RunSchema)
    def post(self, body, run_id: int):
        """Change the run's action (secure -> lockdown -> evacuate) without losing its history."""
        principal = staff_principal()
        run = service.change_action(db.session, principal, run_id, playbooks(), playbook_key=body["playbook"],
                                    location=body.get("location"), variant=body.get("variant"))
        return run_view(db.session, principal, run)


@blp.route("/runs/<int:run_id>/all-clear")
class AllClear(MethodView):
    @blp.arguments(AllClearSchema)
    @blp.response(200, RunSchema)
    def post(self, body, run_id: int):
        """End the run with the all-clear."""
        principal = staff_principal()
        run = service.all_clear(db.session, principal, run_id, body.get("message"))
        return run_view(db.session, principal, run)


@blp.route("/runs/<int:run_id>/cancel")
class Cancel(MethodView):
    @blp.arguments(CancelSchema)
    @blp.response(200, RunSchema)
    def post(self, body, run_id: int):
        """Cancel the run as a false alarm; everyone is told."""
        principal = staff_principal()
        run = service.cancel(db.session, principal, run_id, body["reason"])
        return run_view(db.session, principal, run)


@blp.route("/runs/<int:run_id>/checklist")
class Checklist(MethodView):
    @blp.response(200, ChecklistSchema)
    def get(self, run_id: int):
        """The playbook's checklist steps for the caller's role, with who ticked each."""
        return checklist.run_checklist(db.session, staff_principal(), run_id)

    @blp.arguments(ChecklistTickSchema)
    @blp.response(200, ChecklistSchema)
    def post(self, body, run_id: int):
        """Tick (or untick) a step; the tick goes on the timeline with who and when."""
        return checklist.tick(db.session, staff_principal(), run_id, body["step"], body["done"])
