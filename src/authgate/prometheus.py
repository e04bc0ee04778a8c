"""Prometheus metrics for an :class:`~authgate.Authenticator` (the ``authgate[prometheus]`` extra).

::

    from prometheus_client import start_http_server
    from authgate.prometheus import instrument

    instrument(auth)          # registers with prometheus_client's default registry
    start_http_server(9100)   # or mount prometheus_client.make_asgi_app()

Everything is read when Prometheus scrapes: the cache hit counter is the authenticator's own
(one C call per hit, attached or not), the rest is tallied from :mod:`authgate.events`, which
are emitted only past the cache. Metrics (with the default ``namespace="authgate"``):

- ``authgate_cache_hits_total``, ``authgate_cache_misses_total``, ``authgate_cache_entries``
- ``authgate_decisions_total{outcome, reason, provider}`` (verifications past the cache)
- ``authgate_key_fetches_total{source, result, why}``, ``authgate_key_fetch_seconds{source}``
- ``authgate_remote_calls_total{provider, outcome, status}``,
  ``authgate_remote_call_seconds{provider}``
- ``authgate_breaker_open{provider}`` (1 while the provider's breaker is open)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._extras import extra_missing

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.prometheus", "prometheus", exc) from exc

from ._metrics import Histogram, Tally
from .authenticator import Authenticator

__all__ = ["AuthGateCollector", "instrument"]


class AuthGateCollector(Collector):
    """A Prometheus collector over one authenticator (see the module docstring).

    Args:
        authenticator: the authenticator to export.
        namespace: the metric name prefix.
    """

    def __init__(self, authenticator: Authenticator, namespace: str = "authgate") -> None:
        self.tally = Tally(authenticator)
        self.namespace = namespace

    def collect(self) -> Iterator[Metric]:
        ns = self.namespace
        auth = self.tally.authenticator
        stats = auth.stats
        yield CounterMetricFamily(
            f"{ns}_cache_hits", "Requests answered from the verified-token cache", stats.hits
        )
        yield CounterMetricFamily(
            f"{ns}_cache_misses", "Credentials verified past the cache", stats.misses
        )
        yield GaugeMetricFamily(f"{ns}_cache_entries", "Entries in the cache", stats.cached)
        tally = self.tally
        counts = tally.snapshot()
        decisions, fetches, calls = (
            counts["decisions"],
            counts["key_fetches"],
            counts["remote_calls"],
        )
        fetch_seconds, call_seconds = counts["fetch_seconds"], counts["call_seconds"]
        yield _counter(
            f"{ns}_decisions",
            "Verifications past the cache, by outcome",
            ["outcome", "reason", "provider"],
            decisions,
        )
        yield _counter(
            f"{ns}_key_fetches", "Key fetches, by result", ["source", "result", "why"], fetches
        )
        yield _counter(
            f"{ns}_remote_calls",
            "Calls to verification endpoints, by outcome",
            ["provider", "outcome", "status"],
            calls,
        )
        yield _histogram(f"{ns}_key_fetch_seconds", "Key fetch latency", "source", fetch_seconds)
        yield _histogram(
            f"{ns}_remote_call_seconds", "Verification endpoint latency", "provider", call_seconds
        )
        breaker = GaugeMetricFamily(
            f"{ns}_breaker_open", "1 while the provider's breaker is open", labels=["provider"]
        )
        for provider, is_open in tally.breakers().items():
            breaker.add_metric([provider], 1.0 if is_open else 0.0)
        yield breaker


def _counter(
    name: str, documentation: str, labels: list[str], counts: dict[tuple[str, str, str], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric(list(values), count)
    return family


def _histogram(
    name: str, documentation: str, label: str, histograms: dict[str, Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in sorted(histograms.items()):
        family.add_metric([value], histogram.cumulative(), histogram.sum)
    return family


def instrument(
    authenticator: Authenticator,
    registry: CollectorRegistry | Any = REGISTRY,
    *,
    namespace: str = "authgate",
) -> AuthGateCollector:
    """Export ``authenticator``'s metrics through ``registry`` (one authenticator per
    registry and namespace).

    Args:
        authenticator: the authenticator to export.
        registry: the Prometheus registry (the default one unless given).
        namespace: the metric name prefix.
    """
    collector = AuthGateCollector(authenticator, namespace)
    registry.register(collector)
    return collector
