"""Drill compliance, the drill log, drill facts, after-action reports and trends."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.compliance import reports, service
from emergency.compliance.schemas import (
    ComplianceQuerySchema,
    ComplianceSchema,
    DrillLogSchema,
    DrillSchema,
    FactsSchema,
    ManualDrillSchema,
    ReportQuerySchema,
    ReportSchema,
    TrendsSchema,
    YearQuerySchema,
)
from emergency.db import db
from emergency.runs.schemas import RunSchema
from emergency.runs.views import run_view
from emergency.web import current_principal, staff_principal

blp = Blueprint("compliance", __name__, url_prefix="/api/v1", template_folder="templates",
                description="Drill compliance, the drill log and after-action reports")

# Read the rules file when the app is built, so a bad file shows in the log at start-up.
blp.record_once(lambda state: service.load_rules_into(state.app))

# The printable report inlines its CSS and SVG; nothing else may load or run.
_HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def rules():
    return service.rules_for(current_app)


@blp.route("/compliance")
class Compliance(MethodView):
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.response(200, ComplianceSchema)
    def get(self, args):
        """Per rule: required, done, remaining, status, next deadline; without school_id, the district summary."""
        principal = current_principal()
        return service.compliance_for(db.session, principal, rules(), school_id=args.get("school_id"),
                                      year=args.get("year"), summer_session_start=args.get("summer_session_start"))


@blp.route("/drills")
class Drills(MethodView):
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, DrillLogSchema)
    def get(self, args):
        """The drill log of a school year: drills run in the system and drills entered by hand."""
        principal = current_principal()
        return service.drills_for(db.session, principal, rules(), school_id=args.get("school_id"),
                                  year=args.get("year"))

    @blp.arguments(ManualDrillSchema)
    @blp.response(201, DrillSchema)
    def post(self, body):
        """Record a drill held without the system (on paper); it counts, marked manual."""
        drill = service.record_manual_drill(db.session, staff_principal(), service.ManualDrillRequest(**body))
        return drill.view()


@blp.route("/runs/<int:run_id>/facts")
class Facts(MethodView):
    @blp.arguments(FactsSchema)
    @blp.response(200, RunSchema)
    def post(self, body, run_id: int):
        """Record drill facts on an active or ended drill (secondary exit used, parents notified on)."""
        principal = staff_principal()
        run = service.record_facts(db.session, principal, run_id, body)
        return run_view(db.session, principal, run)


@blp.route("/runs/<int:run_id>/report")
class Report(MethodView):
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, ReportSchema)
    @blp.doc(responses={"200": {"description": "The after-action report, in the format asked for", "content": {
        "application/json": {"schema": ReportSchema},
        "text/csv": {"schema": {"type": "string", "description": "format=csv: the timeline and the rooms"}},
        "text/html": {"schema": {"type": "string", "description": "format=html: a printable page"}}}}})
    def get(self, args, run_id: int):
        """The after-action report: ?format=json (default), csv (timeline and rooms) or html (printable)."""
        report = reports.run_report(db.session, current_principal(), run_id)
        if args["format"] == "csv":
            return Response(reports.report_csv(report), mimetype="text/csv", headers={
                "Content-Disposition": f'attachment; filename="run-{run_id}-report.csv"'})
        if args["format"] == "html":
            return Response(reports.report_html(report), mimetype="text/html",
                            headers={"Content-Security-Policy": _HTML_POLICY})
        return report


@blp.route("/reports/trends")
class Trends(MethodView):
    @blp.arguments(YearQuerySchema, location="query")
    @blp.response(200, TrendsSchema)
    def get(self, args):
        """Drill by drill over a school year: time to full accountability and acknowledgement rate."""
        return reports.trends_for(db.session, current_principal(), rules(), school_id=args.get("school_id"),
                                  year=args.get("year"))
