"""OpenTelemetry metrics for an :class:`~authgate.Authenticator` (the ``authgate[otel]`` extra).

::

    from authgate.otel import instrument
    instrument(auth)   # the global MeterProvider, or instrument(auth, meter_provider=...)

The same instruments as :mod:`authgate.prometheus`, through the OpenTelemetry metrics API:
observable counters and gauges read at collection time (``authgate.cache.hits``,
``authgate.cache.misses``, ``authgate.cache.entries``, ``authgate.decisions``,
``authgate.key_fetches``, ``authgate.remote_calls``, ``authgate.breaker.open``) and two
histograms recorded as events arrive (``authgate.key_fetch.duration``,
``authgate.remote_call.duration``, in seconds). Nothing runs on a cache hit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._extras import extra_missing

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.otel", "otel", exc) from exc

from ._metrics import Tally
from .authenticator import Authenticator
from .events import Event, KeyFetch, RemoteCall

__all__ = ["instrument"]


def instrument(
    authenticator: Authenticator, *, meter_provider: Any = None, prefix: str = "authgate"
) -> Tally:
    """Export ``authenticator``'s metrics through OpenTelemetry.

    Args:
        authenticator: the authenticator to export.
        meter_provider: the ``MeterProvider`` (the global one unless given).
        prefix: the instrument name prefix.
    """
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("authgate")
    tally = Tally(authenticator)

    def observe(read: Callable[[], list[Observation]]) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return read()

        return callback

    def stat(name: str) -> Any:
        return lambda: [Observation(getattr(authenticator.stats, name))]

    def counts(which: str, labels: tuple[str, ...]) -> Any:
        def read() -> list[Observation]:
            items = list(tally.snapshot()[which].items())
            return [Observation(n, dict(zip(labels, key, strict=True))) for key, n in items]

        return read

    meter.create_observable_counter(
        f"{prefix}.cache.hits", [observe(stat("hits"))], description="Cache hits"
    )
    meter.create_observable_counter(
        f"{prefix}.cache.misses", [observe(stat("misses"))], description="Cache misses"
    )
    meter.create_observable_gauge(
        f"{prefix}.cache.entries", [observe(stat("cached"))], description="Cache entries"
    )
    meter.create_observable_counter(
        f"{prefix}.decisions",
        [observe(counts("decisions", ("outcome", "reason", "provider")))],
        description="Verifications past the cache, by outcome",
    )
    meter.create_observable_counter(
        f"{prefix}.key_fetches",
        [observe(counts("key_fetches", ("source", "result", "why")))],
        description="Key fetches, by result",
    )
    meter.create_observable_counter(
        f"{prefix}.remote_calls",
        [observe(counts("remote_calls", ("provider", "outcome", "status")))],
        description="Calls to verification endpoints, by outcome",
    )

    def breakers() -> list[Observation]:
        return [
            Observation(1 if is_open else 0, {"provider": name})
            for name, is_open in tally.breakers().items()
        ]

    meter.create_observable_gauge(
        f"{prefix}.breaker.open", [observe(breakers)], description="1 while a breaker is open"
    )
    fetch_seconds = meter.create_histogram(
        f"{prefix}.key_fetch.duration", unit="s", description="Key fetch latency"
    )
    call_seconds = meter.create_histogram(
        f"{prefix}.remote_call.duration", unit="s", description="Verification endpoint latency"
    )

    def record(event: Event) -> None:
        if isinstance(event, KeyFetch):
            fetch_seconds.record(event.seconds, {"source": event.source, "result": event.result})
        elif isinstance(event, RemoteCall):
            call_seconds.record(event.seconds, {"provider": event.provider})

    authenticator.add_listener(record)
    return tally
