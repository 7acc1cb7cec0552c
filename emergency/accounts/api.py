"""Log in, log out, and who am I."""

from __future__ import annotations

from flask import Response, after_this_request, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from emergency.accounts import service
from emergency.accounts.schemas import LoginResultSchema, LoginSchema, UserSchema
from emergency.accounts.throttle import login_limits, remember_device
from emergency.db import db
from emergency.directory.models import School
from emergency.directory.principal import Principal
from emergency.push.service import forget_login
from emergency.web import bearer_token, current_principal

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Log in and out; who am I")


def user_view(principal: Principal) -> dict:
    """The caller as the API shows it: who, which role, which schools."""
    session = db.session
    query = select(School).order_by(School.code)
    if principal.school_ids is not None:
        query = query.where(School.id.in_(principal.school_ids or [-1]))
    return {
        "kind": principal.kind, "id": principal.id, "name": principal.name, "email": principal.email,
        "role": principal.role, "home_room_id": principal.home_room_id,
        "schools": [{"id": s.id, "code": s.code, "name": s.name} for s in session.scalars(query)],
    }


@blp.route("/auth/login")
class Login(MethodView):
    decorators = login_limits

    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResultSchema)
    @blp.alt_response(429, description="Too many failed logins from this device or address; see Retry-After")
    def post(self, body):
        """Exchange an email and password for a bearer token (repeated failures are slowed down, not locked)."""
        token, row, account = service.login(db.session, body["email"], body["password"],
                                            ttl_hours=current_app.config["TOKEN_TTL_HOURS"])

        @after_this_request
        def _remember(response: Response) -> Response:
            remember_device(response, account.email)
            return response

        return {"token": token, "expires_at": row.expires_at, "user": user_view(service.principal_for(account))}


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.response(204)
    def post(self):
        """Revoke the caller's token; push subscriptions registered with it go too."""
        current_principal()
        forget_login(db.session, service.token_id(db.session, bearer_token()))
        service.logout(db.session, bearer_token())
        # This instance at once; the others within LIVE_AUTH_CACHE_SECONDS, and their sockets by the sweeper.
        current_app.extensions["principal_cache"].forget(service.token_hash(bearer_token()))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, UserSchema)
    def get(self):
        """The caller: user, role and schools."""
        return user_view(current_principal())
