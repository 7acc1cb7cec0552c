"""The application factory: settings, database, adapters, blueprints, Socket.IO."""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict
from pathlib import Path

import redis
from flask import Flask, jsonify
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from emergency.accountability.cache import RollupCache
from emergency.accounts.service import PrincipalCache, forget_on_change
from emergency.accounts.throttle import init_throttle
from emergency.alerts import fanout
from emergency.alerts.setup import init_alerts
from emergency.config import Config
from emergency.db import db
from emergency.errors import DATABASE_RETRY_AFTER, register_error_handlers
from emergency.logs import configure_logging
from emergency.logs import init_app as init_request_logging
from emergency.metrics.exposition import init_app as init_metrics
from emergency.realtime.coalesce import CoalescingPublisher
from emergency.realtime.push import RecordingPublisher, TeePublisher
from emergency.realtime.socket import SocketPublisher, init_socketio, start_session_sweeper
from emergency.runs import announcements
from emergency.web import (
    SWAGGER_UI_ASSETS,
    EmergencyApi,
    GuardedJSONProvider,
    NoCookieSessions,
    api_headers,
    docs_assets,
)

log = logging.getLogger(__name__)


class EmergencyFlask(Flask):
    """Flask where a request is one transaction: views and services flush, the request commits."""

    def dispatch_request(self):
        # Here rather than in after_request or teardown: a failed commit still goes through the error
        # handlers (503 database_unavailable), and every after_request hook sees the final response.
        return db.commit_request(self.make_response(super().dispatch_request()))


def create_app(config: Config | None = None) -> Flask:
    """Build the app from `config` (default: the environment); raises ConfigError on bad settings."""
    config = (config or Config.from_env()).resolved()
    instance = Path(config.INSTANCE_PATH).resolve()
    app = EmergencyFlask(__name__, instance_path=str(instance), static_folder=None)
    app.json = GuardedJSONProvider(app)
    app.session_interface = NoCookieSessions()
    app.config.update({k: v for k, v in asdict(config).items() if k != "extra"})
    app.config.update(config.extra)
    app.config.update(
        API_TITLE="emergency",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_ASSETS,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    configure_logging(config.LOG_LEVEL, config.LOG_FORMAT, mask=config.ENV == "production")
    if config.DATABASE_URL.startswith("sqlite:///"):
        Path(config.DATABASE_URL[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    init_throttle(app)
    app.extensions["principal_cache"] = PrincipalCache(config.LIVE_AUTH_CACHE_SECONDS)
    forget_on_change(app.extensions["db"]["sessionmaker"], app.extensions["principal_cache"])
    app.extensions["rollup_cache"] = RollupCache(config.ROLLUP_CACHE_SECONDS)
    _init_playbooks(app)
    init_alerts(app)
    announcements.listen(fanout)  # runs sit below alerts: a run's events reach fan-out through this

    socketio = init_socketio(app)
    # Summaries are coalesced in every process that publishes (web, worker): see realtime.coalesce.
    app.extensions["socket_publisher"] = SocketPublisher(socketio)
    app.extensions["socket_publisher"].send_after_response(app)
    publisher = CoalescingPublisher(app.extensions["socket_publisher"], config.LIVE_SUMMARY_INTERVAL)
    if app.config["TESTING"]:
        app.extensions["recorded_pushes"] = RecordingPublisher()
        publisher = TeePublisher(publisher, app.extensions["recorded_pushes"])
    app.extensions["publisher"] = publisher
    app.extensions["db"]["sessionmaker"].configure(info={"publisher": publisher, "app": app})

    api = EmergencyApi(app, spec_kwargs={"info": {"description": "Drills and real emergencies for schools."}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearerAuth": []}]
    for blueprint in _blueprints():
        api.register_blueprint(blueprint)
    app.extensions["api"] = api
    for blueprint in _plain_blueprints():
        app.register_blueprint(blueprint)
    app.register_blueprint(docs_assets)
    app.after_request(api_headers)
    register_error_handlers(app)
    _health(app)
    if config.TRUSTED_PROXIES:
        # Behind a load balancer every client would share its address: take the client's own from the
        # X-Forwarded-For entries the TRUSTED_PROXIES nearest proxies appended (login limits count by it).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.TRUSTED_PROXIES, x_proto=config.TRUSTED_PROXIES)
    init_request_logging(app)
    init_metrics(app)
    return app


def _blueprints():
    from emergency.accountability.api import blp as accountability
    from emergency.accounts.api import blp as auth
    from emergency.alerts.api import blp as alerts
    from emergency.compliance.api import blp as compliance
    from emergency.directory.api import blp as directory
    from emergency.playbooks.api import blp as playbooks
    from emergency.push.api import blp as push
    from emergency.roster.api import blp as roster
    from emergency.runs.api import blp as runs

    return [auth, directory, playbooks, runs, alerts, accountability, compliance, roster, push]


def _plain_blueprints():
    from emergency.alerts.webhooks import blp as webhooks
    from emergency.console.views import blp as console

    return [webhooks, console]


def _init_playbooks(app: Flask) -> None:
    from emergency.playbooks.registry import PlaybookRegistry

    registry = PlaybookRegistry(app.config["PLAYBOOKS_DIR"])
    for problem in registry.load():
        log.error("playbook problem: %s", problem)
    app.extensions["playbooks"] = registry


def start_background(app: Flask) -> None:
    """Start the in-process dispatcher (DISPATCHER=thread); called once the database is known to be current."""
    from emergency.alerts.setup import start_dispatcher

    # Everything loaded so far (Flask, SQLAlchemy, playbooks) lives as long as the process. Moving it out
    # of the collector's view keeps a full collection during a 2,000-recipient fan-out from costing ~100 ms.
    gc.freeze()
    if app.config["DISPATCHER"] == "thread":
        start_dispatcher(app)
    start_session_sweeper(app)


REDIS_TIMEOUT = 2.0


def redis_problem(url: str) -> str | None:
    """Why the Redis at `url` cannot be used right now, or None when it answers."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return str(exc)[:200] or type(exc).__name__
    return None


def require_redis(app: Flask) -> None:
    """With REDIS_URL set, refuse to start without it: live events would silently stay on this instance."""
    url = app.config.get("REDIS_URL")
    if url and (problem := redis_problem(url)):
        raise RuntimeError(f"Redis at REDIS_URL ({_without_password(url)}) is unreachable: {problem}. "
                           "Start Redis or fix REDIS_URL; without it live events cannot reach other instances.")


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at else url


def require_migrated(app: Flask) -> None:
    """Refuse to serve a database that is not at the newest migration (only demo mode migrates itself)."""
    from emergency.migrate import is_current

    if not is_current(db.engine(app)):
        raise RuntimeError("The database is not migrated: run `emergency db upgrade` first "
                           "(only `emergency serve --demo` migrates by itself).")


def _health(app: Flask) -> None:
    from emergency.migrate import is_current

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        try:
            with db.engine().connect() as connection:
                connection.execute(text("SELECT 1"))
            current = is_current(db.engine())
        except Exception:  # the point is to report, not to fail
            # The driver's message names the host, port and database: it goes to the log, not to anyone asking.
            log.warning("readiness check: the database is unreachable", exc_info=True)
            return (jsonify({"status": "unavailable", "database": "unreachable"}), 503,
                    {"Retry-After": str(DATABASE_RETRY_AFTER)})
        if not current:
            return jsonify({"status": "unavailable", "database": "not migrated",
                            "detail": "run `emergency db upgrade`"}), 503
        body = {"status": "ok", "database": "ok", "migrations": "current"}
        missing = app.extensions["playbooks"].missing_actions()
        if missing:
            # Not ready to start a lockdown is not ready: the log says which directory and which files.
            log.error("readiness check: no playbook for %s in %s", ", ".join(missing), app.config["PLAYBOOKS_DIR"])
            return jsonify({**body, "status": "unavailable", "playbooks": f"no playbook for {', '.join(missing)}",
                            "detail": "see the server log and `emergency playbooks check`"}), 503
        body["playbooks"] = "ok"
        if app.config.get("REDIS_URL"):
            problem = redis_problem(app.config["REDIS_URL"])
            if problem:
                log.warning("readiness check: Redis is unreachable: %s", problem)
                return (jsonify({**body, "status": "unavailable", "redis": "unreachable"}), 503,
                        {"Retry-After": str(DATABASE_RETRY_AFTER)})
            body["redis"] = "ok"
        return jsonify(body)
