"""gunicorn reads this file from its working directory (the Procfile's `web:` line needs no flag for it).

- LOG_FORMAT=json: gunicorn's own log lines are JSON too, so every line of the web log parses.
- PROMETHEUS_MULTIPROC_DIR: a dead worker's live gauges are forgotten.
"""

import os

from prometheus_client import multiprocess

from emergency.logs import gunicorn_logconfig

if os.environ.get("LOG_FORMAT", "text").strip() == "json":
    logconfig_dict = gunicorn_logconfig("json", mask=os.environ.get("ENV", "production").strip() == "production")


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
