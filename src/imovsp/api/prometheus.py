"""What the API's routes report to Prometheus, and the ``/metrics`` exposition.

The routes count the properties they value, by negotiation type; the server counts requests,
their latency and the model served (:mod:`imovsp.server.telemetry`). With several worker
processes each writes its counts to the directory that ``PROMETHEUS_MULTIPROC_DIR`` names
(`imovsp serve` sets it before any worker starts), and ``/metrics`` adds them up, so whichever
worker answers a scrape reports the whole server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

VALUATIONS = Counter(
    "imovsp_valuations_total",
    "Properties valued (batch items counted one by one), by negotiation type.",
    ["negotiation"],
)
_valuation_children: dict[str, Any] = {}


def metrics_payload() -> tuple[bytes, str]:
    """The exposition text for ``/metrics``: all workers' metrics when there are several."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_valuations(counts: Mapping[str, int]) -> None:
    """Properties valued, by negotiation type."""
    for negotiation, n in counts.items():
        if n:
            child = _valuation_children.get(negotiation)
            if child is None:
                child = _valuation_children[negotiation] = VALUATIONS.labels(negotiation)
            child.inc(n)
