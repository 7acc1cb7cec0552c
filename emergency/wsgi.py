"""What gunicorn loads: `gunicorn -k gevent emergency.wsgi:app` (see the Procfile)."""

import sys

from emergency.app import create_app, require_migrated, require_redis, start_background
from emergency.config import ConfigError
from emergency.serving import raise_open_file_limit, tune_for_connections

try:
    raise_open_file_limit()  # one file descriptor per live connection
    tune_for_connections()
    app = create_app()
    require_migrated(app)
    require_redis(app)
    start_background(app)
except (ConfigError, RuntimeError) as exc:
    sys.stderr.write(f"emergency: {exc}\n")
    sys.exit(3)
