"""The metrics adapters: Prometheus (scraped over HTTP from a real app under uvicorn) and
OpenTelemetry (the SDK's in-memory reader), fed by a key source, a remote provider and hits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount

from authgate import (
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    RemotePolicy,
)
from authgate.asgi import AuthGateMiddleware
from authgate.otel import instrument as instrument_otel
from authgate.prometheus import instrument
from authgate.testing import FakeIntrospection, LocalIssuer, serve_asgi

from .apps import starlette_app


@pytest.fixture
def servers() -> Iterator[tuple[LocalIssuer, FakeIntrospection]]:
    with LocalIssuer("ES256") as issuer, FakeIntrospection() as idp:
        yield issuer, idp


def authenticator(issuer: LocalIssuer, idp: FakeIntrospection) -> Authenticator:
    local = JWTProvider(
        "local",
        JWTVerifier(JWKSKeySource(issuer.jwks_url), algorithms=["ES256"], issuer=issuer.url),
    )
    remote = IntrospectionProvider(
        "idp",
        idp.introspection_url,
        auth=ClientAuth.basic(idp.client_id, idp.client_secret),
        policy=RemotePolicy(breaker_threshold=1, breaker_cooldown=60),
    )
    return Authenticator([local, remote])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_prometheus_scrape_over_http(servers: tuple[LocalIssuer, FakeIntrospection]) -> None:
    issuer, idp = servers
    auth = authenticator(issuer, idp)
    registry = CollectorRegistry()
    instrument(auth, registry)
    app = Starlette(
        routes=[
            Mount("/metrics", app=make_asgi_app(registry)),
            Mount("/", app=AuthGateMiddleware(starlette_app(), auth)),
        ]
    )
    token = issuer.mint("ada")
    with serve_asgi(app) as base, httpx.Client(base_url=base) as web:
        for _ in range(5):  # one miss, four hits
            assert web.get("/whoami", headers=bearer(token)).status_code == 200
        assert web.get("/whoami", headers=bearer(issuer.mint(exp=1))).status_code == 401
        assert web.get("/whoami", headers=bearer(idp.issue("bob"))).status_code == 200
        idp.fault = "error"
        assert web.get("/whoami", headers=bearer(idp.issue("eve"))).status_code == 503
        scraped = web.get("/metrics/")
    assert scraped.status_code == 200
    got = samples(scraped.text)
    assert got[("authgate_cache_hits_total", ())] == 4
    assert got[("authgate_cache_misses_total", ())] == 4
    assert got[("authgate_cache_entries", ())] == 2
    decision = "authgate_decisions_total"
    assert got[(decision, (("outcome", "accepted"), ("provider", "local"), ("reason", "ok")))] == 1
    assert got[(decision, (("outcome", "accepted"), ("provider", "idp"), ("reason", "ok")))] == 1
    refused = (("outcome", "refused"), ("provider", "local"), ("reason", "expired"))
    assert got[(decision, refused)] == 1
    unavailable = (("outcome", "refused"), ("provider", "idp"), ("reason", "provider_unavailable"))
    assert got[(decision, unavailable)] == 1
    fetch = (("result", "ok"), ("source", issuer.jwks_url), ("why", "cold"))
    assert got[("authgate_key_fetches_total", fetch)] == 1
    assert got[("authgate_key_fetch_seconds_count", (("source", issuer.jwks_url),))] == 1
    calls = "authgate_remote_calls_total"
    ok = (("outcome", "accepted"), ("provider", "idp"), ("status", "200"))
    failed = (("outcome", "failed"), ("provider", "idp"), ("status", "500"))
    assert got[(calls, ok)] == 1
    assert got[(calls, failed)] == 1
    assert got[("authgate_remote_call_seconds_count", (("provider", "idp"),))] == 2
    assert got[("authgate_breaker_open", (("provider", "idp"),))] == 1
    auth.close()


def test_opentelemetry_instruments(servers: tuple[LocalIssuer, FakeIntrospection]) -> None:
    issuer, idp = servers
    auth = authenticator(issuer, idp)
    reader = InMemoryMetricReader()
    instrument_otel(auth, meter_provider=MeterProvider(metric_readers=[reader]))
    token = issuer.mint("ada")
    for _ in range(3):
        assert auth.authenticate(bearer(token)) is not None
    assert auth.authenticate(bearer(idp.issue("bob"))) is not None
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert points["authgate.cache.hits"][0].value == 2
    assert points["authgate.cache.misses"][0].value == 2
    assert points["authgate.cache.entries"][0].value == 2
    decisions = {
        (p.attributes["outcome"], p.attributes["provider"]): p.value
        for p in points["authgate.decisions"]
    }
    assert decisions == {("accepted", "local"): 1, ("accepted", "idp"): 1}
    assert points["authgate.key_fetch.duration"][0].count == 1
    assert points["authgate.remote_call.duration"][0].count == 1
    assert [p.value for p in points["authgate.breaker.open"]] == [0]
    auth.close()
