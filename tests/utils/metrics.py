"""This process's own counters, read as Prometheus would scrape them."""

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The sample's value now (0 before its first increment), for before-and-after checks."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
