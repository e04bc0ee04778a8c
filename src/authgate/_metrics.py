"""What the Prometheus and OpenTelemetry adapters share: counts kept from events, read when
scraped. Nothing here runs on a cache hit: hits are the authenticator's own counter.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Final

from .authenticator import Authenticator
from .events import BreakerChange, Decision, Event, KeyFetch, RemoteCall

__all__ = ["BUCKETS", "Tally"]

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency histogram bounds, in seconds (key fetches and remote calls)."""


class Histogram:
    """Cumulative-bucket counts of durations."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last: +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
                break
        else:
            self.buckets[-1] += 1
        self.count += 1
        self.sum += seconds

    def copy(self) -> Histogram:
        """An independent copy."""
        copy = Histogram()
        copy.buckets, copy.count, copy.sum = list(self.buckets), self.count, self.sum
        return copy

    def cumulative(self) -> list[tuple[str, int]]:
        """(``le`` bound, cumulative count) pairs, ending with ``+Inf``."""
        total, pairs = 0, []
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], self.buckets, strict=True):
            total += count
            pairs.append((bound, total))
        return pairs


class Tally:
    """An event listener keeping the counts every adapter exports.

    Args:
        authenticator: the authenticator to watch (the tally subscribes itself).
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self._lock = threading.Lock()
        self.decisions: Counter[tuple[str, str, str]] = Counter()
        self.key_fetches: Counter[tuple[str, str, str]] = Counter()
        self.remote_calls: Counter[tuple[str, str, str]] = Counter()
        self.fetch_seconds: dict[str, Histogram] = {}
        self.call_seconds: dict[str, Histogram] = {}
        authenticator.add_listener(self)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Decision):
                self.decisions[(event.outcome, event.reason, event.provider or "")] += 1
            elif isinstance(event, KeyFetch):
                self.key_fetches[(event.source, event.result, event.why)] += 1
                self.fetch_seconds.setdefault(event.source, Histogram()).observe(event.seconds)
            elif isinstance(event, RemoteCall):
                status = "" if event.status is None else str(event.status)
                self.remote_calls[(event.provider, event.outcome, status)] += 1
                self.call_seconds.setdefault(event.provider, Histogram()).observe(event.seconds)
            elif isinstance(event, BreakerChange):
                pass  # the state is read from the providers when scraped

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every count, taken under the tally's lock (for a scrape)."""
        with self._lock:
            return {
                "decisions": dict(self.decisions),
                "key_fetches": dict(self.key_fetches),
                "remote_calls": dict(self.remote_calls),
                "fetch_seconds": {k: v.copy() for k, v in self.fetch_seconds.items()},
                "call_seconds": {k: v.copy() for k, v in self.call_seconds.items()},
            }

    def breakers(self) -> dict[str, bool]:
        """Each remote-capable provider's breaker: open or not, now."""
        found = {}
        for provider in self.authenticator.providers:
            remote = getattr(provider, "remote", None)
            if remote is not None and hasattr(remote, "breaker_open"):
                found[provider.name] = bool(remote.breaker_open)
        return found
