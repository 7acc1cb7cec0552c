# The emergency service: one image for every process type of the Procfile (web, worker, release).
#   docker build -t emergency .
#   docker run --rm emergency web|worker|release|<any command>
# Dependencies come from requirements.lock (exact versions); see docs/operations.md to regenerate it.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.lock /app/requirements.lock
RUN /venv/bin/pip install --require-virtualenv -r /app/requirements.lock
COPY pyproject.toml README.md /app/
COPY emergency /app/emergency
# Editable: the demo district and the playbooks are read from /app, next to the code.
RUN /venv/bin/pip install --no-deps -e /app

# The image that runs: the virtualenv and the source, no compiler, no pip cache, not root.
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PORT=5000 INSTANCE_PATH=/var/lib/emergency PROMETHEUS_MULTIPROC_DIR=/tmp/emergency-metrics
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin emergency \
    && mkdir -p /var/lib/emergency && chown emergency /var/lib/emergency
COPY --from=build /venv /venv
COPY --chown=root:root . /app
WORKDIR /app
USER emergency
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'), timeout=4)"
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
