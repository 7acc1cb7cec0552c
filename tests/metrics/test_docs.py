"""The example dashboard and alerting rules in docs/ name metrics that the service really exports."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import REPO
from tests.metrics.helpers import samples

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def app_overrides():
    return {"METRICS_TOKEN": TOKEN}


def exported(client) -> set[str]:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    names = {s.name for s in samples(text)}
    # Families with no sample yet (a histogram never observed) still have a # TYPE line.
    return names | set(re.findall(r"^# TYPE (\S+)", text, re.M))


def referenced(expression: str) -> set[str]:
    return set(re.findall(r"\bemergency_[a-z_]+", expression))


def test_dashboard_panels_use_exported_metrics(client):
    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    names = exported(client)
    used = {name for panel in dashboard["panels"] for target in panel["targets"] for name in referenced(target["expr"])}
    assert len(dashboard["panels"]) >= 12
    missing = {n for n in used if n not in names and re.sub(r"_(bucket|count|sum|total)$", "", n) not in names}
    assert not missing


def test_three_alerting_rules_on_exported_metrics(client):
    rules = yaml.safe_load((REPO / "docs" / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    names = exported(client)
    assert [r["alert"] for r in rules] == ["EmergencyOutboxStuck", "EmergencyProviderFailing",
                                           "EmergencyDispatcherDown"]
    for rule in rules:
        for name in referenced(rule["expr"]):
            assert name in names or re.sub(r"_(bucket|count|sum|total)$", "", name) in names, name
