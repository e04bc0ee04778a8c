"""The remote client through RFC 7662 introspection and a generic endpoint, on real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from authgate import (
    Authenticator,
    ClientAuth,
    Endpoint,
    EndpointProvider,
    IntrospectionProvider,
    InvalidToken,
    ProviderUnavailable,
    RemotePolicy,
    Upstream,
)
from authgate.testing import FakeAuthon, FakeIntrospection

from .conftest import Clock, all_at_once


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock."""
    return Clock()


@pytest.fixture
def idp() -> Iterator[FakeIntrospection]:
    """A running RFC 7662 introspection server."""
    with FakeIntrospection() as server:
        yield server


def make(
    idp: FakeIntrospection, clock: Clock, timeout: float | None = None, **policy: Any
) -> IntrospectionProvider:
    """An introspection provider for ``idp`` on ``clock``."""
    return IntrospectionProvider(
        "idp",
        idp.introspection_url,
        auth=ClientAuth.basic(idp.client_id, idp.client_secret),
        policy=RemotePolicy(**policy),
        upstream=Upstream(clock=clock, timeout=timeout),
    )


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def test_active_token_maps_to_a_principal(idp: FakeIntrospection, clock: Clock) -> None:
    """active=true: sub, scope, exp and client_id map to the principal, verified remotely."""
    token = idp.issue("alice", scope="orders:read orders:write")
    principal = Authenticator([make(idp, clock)], clock=clock).authenticate(bearer(token))
    assert principal is not None
    assert (principal.subject, principal.credential, principal.verified_by) == (
        "alice",
        "opaque",
        "remote",
    )
    assert principal.scopes == {"orders:read", "orders:write", "authenticated"}
    assert principal.claims["client_id"] == "app"
    assert principal.expires_at == idp.tokens[token]["exp"]


def test_client_credentials_token_uses_client_id_as_subject(
    idp: FakeIntrospection, clock: Clock
) -> None:
    """A token without sub (client credentials) is the client's."""
    token = idp.issue(None, client_id="billing-service")
    principal = Authenticator([make(idp, clock)], clock=clock).authenticate(bearer(token))
    assert principal is not None
    assert principal.subject == "billing-service"


@pytest.mark.parametrize("kind", ["inactive", "unknown"])
def test_inactive_or_unknown_token_is_401(kind: str, idp: FakeIntrospection, clock: Clock) -> None:
    """active=false (or a token the server never issued) is invalid_token, not an outage."""
    token = idp.issue(active=False) if kind == "inactive" else "at_nobody-issued-this"
    with pytest.raises(InvalidToken, match="not active") as caught:
        Authenticator([make(idp, clock)], clock=clock).authenticate(bearer(token))
    assert caught.value.status == 401


def test_wrong_client_secret_is_our_outage_not_the_clients_401(
    idp: FakeIntrospection, clock: Clock
) -> None:
    """The server refusing our client credentials is a 503: the caller did nothing wrong."""
    provider = IntrospectionProvider(
        "idp",
        idp.introspection_url,
        auth=ClientAuth.basic(idp.client_id, "wrong"),
        upstream=Upstream(clock=clock),
    )
    with pytest.raises(ProviderUnavailable) as caught:
        Authenticator([provider], clock=clock).authenticate(bearer(idp.issue()))
    assert caught.value.status == 503
    assert "HTTP 401" in caught.value.detail


def test_results_are_cached_30_s_and_never_past_exp(idp: FakeIntrospection, clock: Clock) -> None:
    """The same token is looked up once per 30 s, and again once its exp has passed."""
    provider = make(idp, clock)
    auth = Authenticator([provider], clock=clock)
    token = idp.issue(ttl=3600)
    for _ in range(20):
        auth.authenticate(bearer(token))
    assert idp.calls(idp.PATH) == 1
    clock.now += 30
    assert auth.authenticate(bearer(token)).verified_by == "remote"  # type: ignore[union-attr]
    assert idp.calls(idp.PATH) == 2
    short = idp.issue(ttl=40)  # issued on real time: about 10 s left on the test clock
    exp = idp.tokens[short]["exp"]
    auth.authenticate(bearer(short))
    calls = idp.calls(idp.PATH)
    clock.now = exp - 0.5
    auth.authenticate(bearer(short))
    assert idp.calls(idp.PATH) == calls
    clock.now = exp
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(short))  # the cached acceptance ended at exp
    assert caught.value.reason == "invalid_token"


def test_rejections_are_cached_5_s(idp: FakeIntrospection, clock: Clock) -> None:
    """A rejected token asked again within 5 s makes no upstream call."""
    provider = make(idp, clock)
    for _ in range(10):
        with pytest.raises(InvalidToken) as caught:
            provider.client.verify("at_bad")
        assert caught.value.reason == "invalid_token"
    assert provider.client.upstream_calls == 1
    clock.now += 5
    with pytest.raises(InvalidToken) as again:
        provider.client.verify("at_bad")
    assert again.value.reason == "invalid_token"
    assert provider.client.upstream_calls == 2


def test_concurrent_identical_tokens_make_one_call(idp: FakeIntrospection, clock: Clock) -> None:
    """100 threads with one new token: one upstream call, 100 principals."""
    auth = Authenticator([make(idp, clock)], clock=clock)
    token = idp.issue("burst")
    subjects = all_at_once(lambda: auth.authenticate(bearer(token)).subject)  # type: ignore[union-attr]
    assert subjects == ["burst"] * 100
    assert idp.calls(idp.PATH) == 1


@pytest.mark.anyio
async def test_concurrent_identical_tokens_async(idp: FakeIntrospection, clock: Clock) -> None:
    """100 concurrent tasks with one new token: one upstream call."""
    auth = Authenticator([make(idp, clock)], clock=clock)
    token = idp.issue("burst")
    results = await asyncio.gather(*(auth.authenticate_async(bearer(token)) for _ in range(100)))
    assert {p.subject for p in results if p} == {"burst"}
    assert idp.calls(idp.PATH) == 1


def test_429_is_a_503_with_the_upstreams_retry_after(idp: FakeIntrospection, clock: Clock) -> None:
    """Rate-limited: answer 503 with Retry-After and make no call until it passes."""
    provider = make(idp, clock)
    idp.fault, idp.retry_after = "ratelimit", "7"
    with pytest.raises(ProviderUnavailable) as caught:
        provider.client.verify(idp.issue())
    assert caught.value.retry_after == 7
    assert "rate-limiting" in caught.value.detail
    idp.fault = None
    clock.now += 6
    with pytest.raises(ProviderUnavailable) as again:
        provider.client.verify(idp.issue())
    assert again.value.retry_after == pytest.approx(1)
    assert idp.calls(idp.PATH) == 1
    clock.now += 1
    assert provider.client.verify(idp.issue("after"))["sub"] == "after"


def test_breaker_opens_after_5_failures_and_closes_after_a_good_trial(
    idp: FakeIntrospection, clock: Clock
) -> None:
    """5 consecutive 500s open the breaker for 15 s: fast 503s, no calls; then a trial call."""
    provider = make(idp, clock)
    idp.fault = "error"
    for i in range(5):
        with pytest.raises(ProviderUnavailable):
            provider.client.verify(f"at_{i}")
    assert idp.calls(idp.PATH) == 5
    for i in range(50):
        with pytest.raises(ProviderUnavailable) as caught:
            provider.client.verify(f"at_more_{i}")
        assert "not calling" in caught.value.detail
    assert caught.value.retry_after == pytest.approx(15)
    assert idp.calls(idp.PATH) == 5
    idp.fault = None
    clock.now += 15
    assert provider.client.verify(idp.issue("healed"))["sub"] == "healed"
    assert provider.client.verify(idp.issue("again"))["sub"] == "again"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("down", "HTTP 503"),
        ("error", "HTTP 500"),
        ("ratelimit", "rate-limiting"),
        ("reset", "unreachable"),
        ("redirect-loop", "redirect"),
        ("bomb", "encoded body"),
        ("slow-headers", "too slow"),
        ("garbage", "not JSON"),
        ("huge", "exceeds"),
        ("hang", "too slow"),
        ("slow", "too slow"),
    ],
)
def test_upstream_trouble_is_a_bounded_503(
    fault: Any, message: str, idp: FakeIntrospection, clock: Clock
) -> None:
    """Outages, garbage, oversized, encoded, looping and silent answers become a 503 within
    the timeout, after one upstream call."""
    from authgate.testing.servers import _bomb

    _bomb()  # built once, before the clock runs (it takes the fake server a second)
    idp.fault = fault
    provider = make(idp, clock, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        Authenticator([provider], clock=clock).authenticate(bearer(idp.issue()))
    assert time.monotonic() - started < 2.0
    assert message in caught.value.detail
    assert idp.calls(idp.PATH) == 1  # one upstream call, no retry into the trouble
    assert caught.value.message == "the identity provider cannot be reached right now"


def test_generic_remote_verifier_against_authon_me() -> None:
    """EndpointProvider maps any endpoint: here Authon's /v1/auth/me with the Bearer token."""
    with FakeAuthon() as authon:
        user = authon.add_user(email="me@example.com")
        token = authon.sign_in(user["id"])
        provider = EndpointProvider("me", authon.url + FakeAuthon.ME_PATH, subject_claim="id")
        principal = Authenticator([provider]).authenticate(bearer(token))
        assert principal is not None
        assert (principal.subject, principal.email, principal.name) == (
            user["id"],
            "me@example.com",
            "Jane Doe",
        )
        with pytest.raises(InvalidToken, match="rejected"):
            Authenticator([provider]).authenticate(bearer("garbage-opaque-token"))


def test_generic_remote_verifier_templates() -> None:
    """Header and body templates carry the token where configured (POST JSON body)."""
    import httpx

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"sub": "templated", "exp": time.time() + 60})

    provider = EndpointProvider(
        "custom",
        Endpoint(
            "https://verify.example/check",
            method="POST",
            headers={"x-service-key": "svc", "x-token": "{token}"},
            json={"token": "{token}", "nested": ["{token}"], "n": 1},
        ),
        upstream=Upstream(transport=httpx.MockTransport(answer)),
    )
    principal = Authenticator([provider]).authenticate(bearer("tok.en-1"))
    assert principal is not None
    assert principal.subject == "templated"
    assert seen[0].headers["x-token"] == "tok.en-1"
    assert seen[0].read() == b'{"token":"tok.en-1","nested":["tok.en-1"],"n":1}'


def test_upstream_text_quoting_the_token_never_reaches_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An upstream error message that echoes the credential is withheld from our log."""
    import httpx

    token = "opaque-secret-token-0123456789abcdef"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            500, json={"error": "Server Error", "message": f"cannot check {token[:20]}..."}
        )

    provider = EndpointProvider(
        "echo",
        "https://verify.example/check",
        upstream=Upstream(transport=httpx.MockTransport(answer)),
    )
    with pytest.raises(ProviderUnavailable):
        Authenticator([provider]).authenticate(bearer(token))
    assert "withheld" in caplog.text
    assert token[:12] not in caplog.text


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_caller_that_looked_just_before_a_flight_settled_makes_no_second_call(
    path: str,
) -> None:
    """Single-flight's window: a caller misses the results, the flight then settles, and the
    caller leads a new one; the leader looks again, so no second upstream call is made."""
    import asyncio

    import httpx

    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"sub": "a", "exp": time.time() + 60})

    transport = httpx.MockTransport(answer)
    provider = EndpointProvider(
        "v",
        "https://verify.example/check",
        upstream=Upstream(transport=transport, async_transport=transport),
    )
    client = provider.remote
    assert client is not None
    client.verify("tok-1")
    original = client._before
    stale = [True]

    def looks_too_early(key: bytes) -> Any:
        if stale:
            stale.pop()
            return None  # as if the first flight had not settled yet
        return original(key)

    client._before = looks_too_early  # type: ignore[method-assign]
    if path == "sync":
        assert client.verify("tok-1")["sub"] == "a"
    else:
        assert asyncio.run(client.verify_async("tok-1"))["sub"] == "a"
    assert len(calls) == 1
