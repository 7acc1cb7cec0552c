"""Choosing the provider from config, and running the dispatcher in a thread or a worker.

A composition module, like app.py (an edge in docs/architecture.md's layers): it hands the
dispatcher the periodic jobs of the packages above alerts, so alerts itself never imports them.
"""

from __future__ import annotations

import logging
import signal
import threading

from flask import Flask

from emergency.accountability.checkins import apply_untallied
from emergency.accountability.reminders import run_due_reminders
from emergency.alerts.budgets import Budget, DatabaseBudget, LocalBudget, RedisBudget
from emergency.alerts.dispatcher import Dispatcher, Settings, sender_pool
from emergency.alerts.escalation import run_due_escalations
from emergency.alerts.outbox import wake_on_commit
from emergency.alerts.providers import ConsoleProvider, Provider, TwilioProvider
from emergency.alerts.providers.instrumented import instrument
from emergency.alerts.providers.webpush import WebPushProvider
from emergency.alerts.wakeup import listen_for_new_alerts
from emergency.alerts.webpush import PushSender
from emergency.config import DEV_ENVS
from emergency.db import is_postgres
from emergency.metrics.exposition import serve_metrics
from emergency.push.vapid import configured_private_key, public_key

log = logging.getLogger(__name__)


def build_provider(config) -> Provider:
    """The one place that decides which provider sends alerts."""
    if config["ALERT_PROVIDER"] == "twilio":
        return TwilioProvider(
            config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
            from_number=(sender_pool(config) or [None])[0],
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"] or None,
            api_base=config["TWILIO_API_BASE"] or None, timeout=config["SEND_TIMEOUT_SECONDS"],
        )
    return ConsoleProvider(show_numbers=config["ENV"] in DEV_ENVS)


def build_push_sender(app: Flask) -> PushSender:
    """Web Push with the configured VAPID key; without one (production, unset) push alerts fail plainly."""
    private_key = configured_private_key(app.config)
    provider = None
    if private_key:
        provider = app.extensions.get("push_provider") or WebPushProvider(
            private_key, app.config["VAPID_SUBJECT"], timeout=app.config["SEND_TIMEOUT_SECONDS"],
            pool_size=app.config["PUSH_CONCURRENCY"])
        app.extensions["push_public_key"] = public_key(private_key)
    else:
        log.warning("VAPID_PRIVATE_KEY is not set: Web Push is off (run `emergency push keys` to make a pair)")
        app.extensions["push_public_key"] = None
    return PushSender(app.extensions["db"]["sessionmaker"], provider, app.config["SECRET_KEY"])


def periodic_jobs() -> list:
    """Jobs the dispatcher runs about once a second: escalations, reminders, check-ins left untallied."""
    return [run_due_escalations, run_due_reminders, apply_untallied]


def init_alerts(app: Flask) -> None:
    """Attach the provider and a dispatcher (not yet running) to the app."""
    provider = app.extensions.get("alert_provider") or build_provider(app.config)
    app.extensions["alert_provider"] = provider
    dispatcher = Dispatcher(app.extensions["db"]["sessionmaker"], instrument(provider),
                            Settings.from_config(app.config), periodic_jobs(),
                            push=build_push_sender(app))
    dispatcher.budget = build_budget(app.config, app.extensions["db"]["engine"], dispatcher.live_dispatchers)
    wake_on_commit(app.extensions["db"]["sessionmaker"], dispatcher.wake)
    app.extensions["dispatcher"] = dispatcher


def build_budget(config, engine, live_dispatchers) -> Budget:
    """The one place that decides how dispatchers share the provider's rate (see alerts.budgets)."""
    without_redis = DatabaseBudget(engine) if is_postgres(engine) else LocalBudget(live_dispatchers)
    if config.get("REDIS_URL"):
        return RedisBudget(config["REDIS_URL"], fallback=without_redis)
    return without_redis


def start_dispatcher(app: Flask) -> threading.Thread:
    """Run the dispatcher as a daemon thread of the web process (the default)."""
    dispatcher: Dispatcher = app.extensions["dispatcher"]
    listen_for_new_alerts(app.extensions["db"]["engine"], dispatcher.wake, dispatcher.stop_event)
    thread = threading.Thread(target=dispatcher.run_forever, name="dispatcher", daemon=True)
    thread.start()
    app.extensions["dispatcher_thread"] = thread
    return thread


def run_worker(app: Flask) -> None:
    """Run the dispatcher in the foreground until SIGTERM or Ctrl-C (`emergency worker`)."""
    dispatcher: Dispatcher = app.extensions["dispatcher"]

    def _stop(_signum, _frame):
        dispatcher.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if app.config.get("METRICS_PORT"):
        serve_metrics(app, app.config["METRICS_PORT"])
    if not app.config.get("REDIS_URL"):
        log.warning("REDIS_URL is not set: this worker cannot push live delivery events to web instances")
    listen_for_new_alerts(app.extensions["db"]["engine"], dispatcher.wake, dispatcher.stop_event)
    dispatcher.run_forever()
