"""The playbooks a caller may use, with what they may start; an admin reload."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.routing import BaseConverter

from emergency.errors import Forbidden, NotFound
from emergency.playbooks.model import MODES, Playbook
from emergency.playbooks.schemas import PlaybookSchema, ReloadResultSchema
from emergency.web import current_principal, staff_principal

blp = Blueprint("playbooks", __name__, url_prefix="/api/v1", description="Playbooks")


class PlaybookKeyConverter(BaseConverter):
    """A playbook key, never the word `reload`: /playbooks/reload is the POST-only reload, not a playbook,
    so GET there is a 405 and OPTIONS does not advertise GET."""

    regex = r"(?!reload$)[^/]+"


# Registered before the routes below are added (deferred functions run in the order they were recorded).
blp.record_once(lambda state: state.app.url_map.converters.setdefault("playbook_key", PlaybookKeyConverter))


def registry():
    return current_app.extensions["playbooks"]


def playbook_view(playbook: Playbook, role: str) -> dict:
    """The full playbook plus `can_start` for the caller's role."""
    view = playbook.to_dict()
    view["can_start"] = {mode: playbook.can_start(role, mode) for mode in MODES}
    return view


@blp.route("/playbooks")
class Playbooks(MethodView):
    @blp.response(200, PlaybookSchema(many=True))
    def get(self):
        """Every loaded playbook, each with `can_start: {drill, real}` for the caller (not for partners)."""
        principal = staff_principal()
        return [playbook_view(p, principal.role) for p in registry().all()]


@blp.route("/playbooks/<playbook_key:key>")
class PlaybookOne(MethodView):
    @blp.response(200, PlaybookSchema)
    def get(self, key: str):
        """One playbook in full."""
        principal = staff_principal()
        playbook = registry().get(key)
        if playbook is None:
            raise NotFound(f"There is no playbook '{key}'.")
        return playbook_view(playbook, principal.role)


@blp.route("/playbooks/reload")
class Reload(MethodView):
    @blp.response(200, ReloadResultSchema)
    def post(self):
        """Reload playbooks from PLAYBOOKS_DIR (district admins); bad files keep their last good version."""
        principal = current_principal()
        if not principal.is_district_admin:
            raise Forbidden("Only district admins can reload playbooks.")
        problems = registry().load()
        return {"loaded": [p.key for p in registry().all()], "problems": [str(p) for p in problems]}
