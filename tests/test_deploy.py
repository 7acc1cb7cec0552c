"""The container image and compose.yaml: every service runs a Procfile line, the topology is complete.

`docker compose config` validates the file where docker is installed; elsewhere the checks below
parse it. The same topology runs without docker in tests/realtime/test_topology.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s or s.get("image", "").startswith("emergency")}


def procfile() -> dict:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if re.match(r"^\w+:", line))


def test_every_service_of_ours_runs_a_line_of_the_procfile():
    kinds = procfile()
    assert OURS, "compose.yaml builds no service from this repository"
    for name, service in OURS.items():
        assert service["command"][0] in kinds, f"{name} runs {service['command']}, not a Procfile process type"
    ran = sorted(s["command"][0] for s in OURS.values())
    assert ran == ["release", "web", "web", "worker"]


def test_topology_postgres_redis_release_two_webs_behind_a_balancer_and_a_worker():
    assert {"postgres", "redis", "lb"} <= set(SERVICES)
    for name in ("web1", "web2", "worker"):
        deps = SERVICES[name]["depends_on"]
        assert deps["release"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        env = SERVICES[name]["environment"]
        assert env["DISPATCHER"] == "off" and env["REDIS_URL"].startswith("redis://")
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["TRUSTED_PROXIES"] == "1"  # one nginx in front: login limits count the client's address
    assert all(SERVICES[w]["ulimits"]["nofile"]["hard"] >= 10_000 for w in ("web1", "web2"))  # WEB_CONNECTIONS
    assert SERVICES["lb"]["ports"] == ["${HTTP_PORT:-8080}:80"]
    conf = (REPO / "deploy" / "compose-nginx.conf").read_text()
    assert "server web1:5000" in conf and "server web2:5000" in conf and "ip_hash" in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf and "Connection $connection_upgrade" in conf
    assert "./deploy/compose-nginx.conf:/etc/nginx/conf.d/default.conf:ro" in SERVICES["lb"]["volumes"]


def test_named_volumes_are_declared_and_postgres_keeps_its_data_in_one():
    declared = set(COMPOSE["volumes"])
    used = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert used <= declared
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]


def test_the_image_is_slim_not_root_healthchecked_and_installs_the_lock():
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")
    final = stages[-1]
    assert [base.split()[0] for base in re.findall(r"^FROM (.+)$", dockerfile, re.M)] == ["python:3.11-slim"] * 2
    assert "pip install --require-virtualenv -r /app/requirements.lock" in dockerfile
    assert re.search(r"^USER emergency$", final, re.M)
    assert "HEALTHCHECK" in final and "/healthz" in final
    for tool in ("build-essential", "gcc", "apt-get install"):
        assert tool not in final
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in final


@pytest.mark.parametrize("kind, expected", [("release", "migrated"), ("web", "serving on 5000"),
                                            ("worker", "working")])
def test_entrypoint_runs_the_procfile_line(tmp_path, kind, expected):
    fake = tmp_path / "Procfile"
    fake.write_text("release: echo migrated\nweb: echo serving on ${PORT:-5000}\nworker: echo working\n")
    env = {"PATH": os.environ["PATH"], "PROCFILE": str(fake), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "counter_1.db").write_text("stale")

    result = subprocess.run(["sh", str(REPO / "deploy" / "entrypoint.sh"), kind], env=env, capture_output=True,
                            text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    assert list((tmp_path / "m").iterdir()) == []  # an earlier start's counters are gone


def test_entrypoint_runs_any_other_command(tmp_path):
    result = subprocess.run(["sh", str(REPO / "deploy" / "entrypoint.sh"), "echo", "purged"], capture_output=True,
                            text=True, env={"PATH": os.environ["PATH"], "PROCFILE": str(REPO / "Procfile")},
                            timeout=30)

    assert result.stdout.strip() == "purged"


@pytest.mark.skipif(shutil.which("docker") is None or subprocess.run(
    ["docker", "compose", "version"], capture_output=True).returncode != 0, reason="docker compose is not installed")
def test_docker_compose_config_accepts_the_file():
    env = {**os.environ, "SECRET_KEY": "x" * 32}
    result = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
