"""Prometheus metrics: a small front door beside the API (``GET /metrics`` on its port).

* :class:`FleetCollector` reads the node's counters (broker, rules engine, Detect, API)
  at each scrape, over :class:`MetricSources`;
* :class:`MetricsEndpoint` answers a scrape: the text exposition for the holder of the
  scrape token, 401 for anyone else;
* :class:`ScrapeToken`, :func:`ensure_scrape_token`: the bearer token, in an owner-only
  file created on first use.

``docs/metrics.md`` lists every metric and how to point Prometheus at it.
"""

from __future__ import annotations

from ._collector import ApiCalls, FleetCollector, MetricSources
from ._endpoint import METRICS_PATH, MetricsEndpoint, ScrapeAnswer
from ._token import (
    ScrapeToken,
    ScrapeTokenError,
    ensure_scrape_token,
    load_scrape_token,
    new_token,
)

__all__ = [
    "METRICS_PATH",
    "ApiCalls",
    "FleetCollector",
    "MetricSources",
    "MetricsEndpoint",
    "ScrapeAnswer",
    "ScrapeToken",
    "ScrapeTokenError",
    "ensure_scrape_token",
    "load_scrape_token",
    "new_token",
]
