#!/bin/sh
# Run one process type of the Procfile (web, worker, release): the very line a Procfile platform runs.
# Anything else is run as a command: `docker compose run --rm worker emergency privacy purge`.
# DEMO=1 makes `release` also load the demo district into an empty database.
set -eu
procfile="${PROCFILE:-/app/Procfile}"
kind="${1:-web}"
line=$(sed -n "s/^${kind}:[[:space:]]*//p" "$procfile" 2>/dev/null | head -n 1)
if [ -z "$line" ]; then
  exec "$@"
fi
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  # The counters of the processes of an earlier start would otherwise be added to this one's.
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
if [ "$kind" = release ]; then
  sh -c "$line"
  if [ "${DEMO:-0}" = 1 ]; then
    exec emergency demo
  fi
  exit 0
fi
exec sh -c "exec $line"
