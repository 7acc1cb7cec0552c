"""Reading the Prometheus text format in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if there is none)."""
    return sum(s.value for s in samples(text)
               if s.name == name and all(s.labels.get(k) == str(v) for k, v in labels.items()))
