"""Schools, rooms, people and partners, each within the caller's scope."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from emergency.db import db
from emergency.directory import service
from emergency.directory.schemas import PartnerSchema, PersonSchema, RoomSchema, SchoolSchema
from emergency.web import current_principal

blp = Blueprint("directory", __name__, url_prefix="/api/v1", description="The district directory")


@blp.route("/schools")
class Schools(MethodView):
    @blp.response(200, SchoolSchema(many=True))
    def get(self):
        """The schools the caller may see."""
        return service.schools_in_scope(db.session, current_principal())


@blp.route("/schools/<int:school_id>")
class SchoolOne(MethodView):
    @blp.response(200, SchoolSchema)
    def get(self, school_id: int):
        """One school (404 when outside the caller's scope)."""
        return service.get_school(db.session, current_principal(), school_id)


@blp.route("/schools/<int:school_id>/rooms")
class Rooms(MethodView):
    @blp.response(200, RoomSchema(many=True))
    def get(self, school_id: int):
        """The rooms of a school."""
        service.get_school(db.session, current_principal(), school_id)
        return service.rooms_of(db.session, school_id)


@blp.route("/schools/<int:school_id>/people")
class People(MethodView):
    @blp.response(200, PersonSchema(many=True))
    def get(self, school_id: int):
        """Staff of a school; mobile numbers are shown to admins only."""
        principal = current_principal()
        service.get_school(db.session, principal, school_id)
        return [service.contact_view(principal, school_id, p)
                for p in service.people_of(db.session, school_id, include_district=False)]


@blp.route("/schools/<int:school_id>/partners")
class Partners(MethodView):
    @blp.response(200, PartnerSchema(many=True))
    def get(self, school_id: int):
        """Police, fire and EMS partners covering a school."""
        principal = current_principal()
        service.get_school(db.session, principal, school_id)
        return [service.contact_view(principal, school_id, p) for p in service.partners_of(db.session, school_id)]
