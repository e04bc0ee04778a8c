"""Remote key sources against a real JWKS server on 127.0.0.1, with counted requests."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from authgate import (
    ConfigurationError,
    InvalidToken,
    JWKSKeySource,
    JWTVerifier,
    KeyFetchPolicy,
    KeySourceUnavailable,
    OIDCKeySource,
    RemoteKeySource,
    Upstream,
)
from authgate._exchange import Response
from authgate.testing import LocalIssuer, SigningKey, TokenFactory, b64url, json_answer

from .conftest import Clock, all_at_once


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock starting at the real time."""
    return Clock()


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    """A fresh RS256 LocalIssuer, stopped after the test."""
    with LocalIssuer("ES256") as running:
        yield running


def make(
    issuer: LocalIssuer, clock: Clock, timeout: float | None = None, **policy: Any
) -> tuple[JWKSKeySource, JWTVerifier]:
    """A JWKS source on the issuer and a verifier over it, all three on ``clock``."""
    issuer.factory.clock = clock
    source = JWKSKeySource(
        issuer.jwks_url,
        policy=KeyFetchPolicy(**policy),
        upstream=Upstream(clock=clock, timeout=timeout),
    )
    verifier = JWTVerifier(source, algorithms=["ES256"], issuer=issuer.url, clock=clock)
    return source, verifier


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll until ``condition`` holds (for background refreshes)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def token_with_kid(issuer: LocalIssuer, kid: str) -> str:
    """A well-formed token naming ``kid`` with a dummy signature (the key lookup fails first)."""
    header = b64url(json.dumps({"alg": "ES256", "kid": kid}))
    payload = b64url(json.dumps({"exp": 4_000_000_000, "iss": issuer.url}))
    return f"{header}.{payload}.{b64url(b'x' * 64)}"


def test_construction_makes_no_network_call(issuer: LocalIssuer, clock: Clock) -> None:
    """Building the source and the verifier fetches nothing."""
    make(issuer, clock)
    assert issuer.jwks_requests == 0


def test_first_verification_fetches_then_serves_from_cache(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """One fetch serves many verifications while the set is fresh."""
    _, verifier = make(issuer, clock)
    for _ in range(50):
        assert verifier.verify(issuer.mint("alice"))["sub"] == "alice"
    assert issuer.jwks_requests == 1


@pytest.mark.anyio
async def test_verify_async_fetches_with_the_async_client(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """verify_async performs its fetch without blocking and verifies."""
    _, verifier = make(issuer, clock)
    assert (await verifier.verify_async(issuer.mint("bob")))["sub"] == "bob"
    assert issuer.jwks_requests == 1


def test_oidc_discovery_finds_the_jwks(issuer: LocalIssuer, clock: Clock) -> None:
    """OIDC discovery reads jwks_uri from the issuer's configuration document."""
    source = OIDCKeySource(issuer.url, upstream=Upstream(clock=clock))
    verifier = JWTVerifier(source, algorithms=["ES256"], issuer=issuer.url, clock=clock)
    assert verifier.verify(issuer.mint("carol"))["sub"] == "carol"
    assert issuer.requests["/.well-known/openid-configuration"] == 1
    assert source.jwks_uri == issuer.jwks_url


def test_oidc_discovery_for_another_issuer_is_refused(issuer: LocalIssuer, clock: Clock) -> None:
    """A discovery document naming a different issuer is a key-source error, not trust."""
    source = OIDCKeySource(issuer.url + "/tenant", upstream=Upstream(clock=clock))
    verifier = JWTVerifier(source, algorithms=["ES256"], clock=clock)
    with pytest.raises(KeySourceUnavailable) as caught:
        verifier.verify(issuer.mint())
    assert "discovery endpoint answered HTTP 404" in caught.value.detail


def test_concurrent_verifications_with_a_new_kid_make_one_fetch(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """100 threads verifying a token with a just-rotated kid cause exactly one refetch."""
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    issuer.rotate()
    clock.now += 31  # past the unknown-kid cooldown
    token = issuer.mint("rotated")
    assert all_at_once(lambda: verifier.verify(token)["sub"]) == ["rotated"] * 100
    assert issuer.jwks_requests == 2


@pytest.mark.anyio
async def test_concurrent_async_verifications_on_a_cold_source_make_one_fetch(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """100 concurrent tasks on a never-fetched source share one fetch."""
    _, verifier = make(issuer, clock)
    token = issuer.mint("dave")
    results = await asyncio.gather(*(verifier.verify_async(token) for _ in range(100)))
    assert {claims["sub"] for claims in results} == {"dave"}
    assert issuer.jwks_requests == 1


@pytest.mark.anyio
async def test_concurrent_async_rotation_makes_one_fetch(issuer: LocalIssuer, clock: Clock) -> None:
    """100 concurrent tasks with a rotated kid share one refetch."""
    _, verifier = make(issuer, clock)
    await verifier.verify_async(issuer.mint())
    issuer.rotate()
    clock.now += 31
    token = issuer.mint("erin")
    results = await asyncio.gather(*(verifier.verify_async(token) for _ in range(100)))
    assert {claims["sub"] for claims in results} == {"erin"}
    assert issuer.jwks_requests == 2


def test_random_kids_inside_one_cooldown_make_at_most_one_fetch(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """10,000 tokens with random kids fail fast as key_not_found with at most one extra fetch."""
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    clock.now += 31
    reasons = set()
    for _ in range(10_000):
        with pytest.raises(InvalidToken) as caught:
            verifier.verify(token_with_kid(issuer, uuid.uuid4().hex))
        reasons.add(caught.value.reason)
    assert reasons == {"key_not_found"}
    assert issuer.jwks_requests <= 2


def test_unknown_kid_inside_the_cooldown_does_not_fetch(issuer: LocalIssuer, clock: Clock) -> None:
    """Right after a fetch, a new kid fails fast without a request; after it, one refetch."""
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    issuer.rotate()
    token = issuer.mint("frank")
    with pytest.raises(InvalidToken, match="no configured key"):
        verifier.verify(token)
    assert issuer.jwks_requests == 1
    clock.now += 30
    assert verifier.verify(token)["sub"] == "frank"
    assert issuer.jwks_requests == 2


def test_kids_confirmed_absent_are_remembered(issuer: LocalIssuer, clock: Clock) -> None:
    """A kid missing after a refetch does not trigger another one when the cooldown ends."""
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    clock.now += 31
    ghost = token_with_kid(issuer, "ghost")
    for _ in range(2):
        with pytest.raises(InvalidToken) as caught:
            verifier.verify(ghost)
        assert caught.value.reason == "key_not_found"
        clock.now += 31
    assert issuer.jwks_requests == 2


def test_outage_serves_the_last_good_set_until_the_staleness_bound(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """During an outage the cached keys verify until max_age + max_stale, then a 503-class error."""
    source, verifier = make(issuer, clock, max_stale=3600)
    verifier.verify(issuer.mint())
    issuer.fault = "down"
    clock.now += 600 + 1  # expired: a background refresh starts and fails
    assert verifier.verify(issuer.mint("grace"))["sub"] == "grace"
    wait_for(lambda: issuer.jwks_requests == 2 and not source._flight.in_flight("fetch"))
    clock.now += 3600 - 2
    assert verifier.verify(issuer.mint("still"))["sub"] == "still"
    clock.now += 2  # past the staleness bound
    with pytest.raises(KeySourceUnavailable) as caught:
        verifier.verify(issuer.mint())
    assert caught.value.status == 503
    assert caught.value.retry_after >= 1
    assert "HTTP 503" in caught.value.detail
    assert "127.0.0.1" not in caught.value.message  # clients learn no internal URL
    issuer.fault = None
    clock.now += 31
    assert verifier.verify(issuer.mint("back"))["sub"] == "back"


def test_failed_first_fetch_fails_fast_inside_the_cooldown(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """With no set ever fetched, a failure is not retried until the cooldown ends."""
    _, verifier = make(issuer, clock)
    issuer.fault = "down"
    for _ in range(20):
        with pytest.raises(KeySourceUnavailable):
            verifier.verify(issuer.mint())
    assert issuer.jwks_requests == 1
    issuer.fault = None
    clock.now += 30
    assert verifier.verify(issuer.mint("ok"))["sub"] == "ok"


def test_routine_refresh_happens_ahead_of_expiry_in_the_background(
    issuer: LocalIssuer, clock: Clock
) -> None:
    """max-age=120 sets freshness; the refresh starts before expiry, and nobody waits for it."""
    issuer.cache_control = "public, max-age=120"
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    clock.now += 90
    verifier.verify(issuer.mint())
    assert issuer.jwks_requests == 1
    clock.now += 10  # 100 s: inside the refresh-ahead window (last 24 s of 120)
    issuer.rotate()
    verifier.verify(issuer.factory.mint(key=issuer.factory.retired[0]))  # served at once
    wait_for(lambda: issuer.jwks_requests == 2)
    assert isinstance(verifier.key_source, RemoteKeySource)
    remote = verifier.key_source
    wait_for(lambda: len(remote.current() or ()) == 2)
    assert verifier.verify(issuer.mint("new"))["sub"] == "new"
    assert issuer.jwks_requests == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=120", 120.0),
        ("public, max-age=5", 60.0),
        ("max-age=999999", 86400.0),
        ('s-maxage=10, max-age="300"', 300.0),
        ("no-cache", 600.0),
        ("max-age=abc", 600.0),
        ("", 600.0),
    ],
)
def test_cache_control_is_honoured_and_clamped(header: str, expected: float) -> None:
    """max-age sets freshness, clamped to [1 min, 24 h]; otherwise the 10 min default."""
    response = Response(200, httpx.Headers({"cache-control": header}), b"")
    assert KeyFetchPolicy().freshness(response) == expected


def test_a_broken_key_does_not_drop_the_set(issuer: LocalIssuer, clock: Clock) -> None:
    """A JWKS with unparseable and unsafe keys still verifies with its good key."""
    issuer.extra_keys = [
        {"kty": "RSA", "kid": "broken", "n": "@@@", "e": "AQAB"},
        {"kty": "RSA", "kid": "small", "n": b64url(b"\xc1" * 128), "e": "AQAB"},
        {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": "A", "y": "A"},
        {"kty": "oct", "kid": "secret", "k": b64url(b"s" * 32)},
        "not even an object",  # type: ignore[list-item]
    ]
    source, verifier = make(issuer, clock)
    assert verifier.verify(issuer.mint("hank"))["sub"] == "hank"
    current = source.current()
    assert current is not None
    assert len(current) == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("huge", "exceeds"),
        ("slow", "too slow"),
        ("redirect", "redirect"),
        ("garbage", "not JSON"),
        ("hang", "too slow"),
        ("down", "HTTP 503"),
        ("error", "HTTP 500"),
        ("ratelimit", "HTTP 429"),
        ("reset", "unreachable"),
        ("redirect-loop", "redirect"),
        ("bomb", "encoded body"),
        ("slow-headers", "too slow"),
    ],
)
def test_hostile_answers_neither_hang_nor_exhaust_memory(
    fault: Any, message: str, issuer: LocalIssuer, clock: Clock
) -> None:
    """Huge, slow, redirecting, looping, encoded, reset, garbage and silent answers fail in
    time, bounded in memory, after one fetch."""
    from authgate.testing.servers import _bomb

    _bomb()  # the fake server builds it in this process: before memory is measured
    issuer.fault = fault
    _, verifier = make(issuer, clock, timeout=1.0)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeySourceUnavailable) as caught:
            verifier.verify(issuer.mint())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3.0
    assert peak < 8 * 1024 * 1024
    assert message in caught.value.detail
    assert issuer.jwks_requests == 1  # one fetch, then the cooldown


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks.json",
        "http://10.0.0.1/jwks.json",
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/jwks.json",
        "https:///jwks.json",
        "jwks.json",
    ],
)
def test_only_https_or_loopback_urls(url: str) -> None:
    """Plain http is refused except for loopback hosts."""
    with pytest.raises(ConfigurationError):
        JWKSKeySource(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/jwks.json",
        "http://127.0.0.1:1/k",
        "http://localhost/k",
        "http://[::1]/k",
    ],
)
def test_https_and_loopback_urls_are_accepted(url: str) -> None:
    """https anywhere and http on loopback are accepted, with no request made."""
    assert JWKSKeySource(url).fetches == 0


@pytest.mark.parametrize(
    "policy",
    [{"max_age": 0}, {"cooldown": -1}, {"max_stale": -1}, {"min_age": 100, "max_age_cap": 50}],
)
def test_bad_policies_raise_at_construction(policy: dict[str, Any]) -> None:
    """A meaningless fetch policy fails at start-up."""
    with pytest.raises(ConfigurationError):
        KeyFetchPolicy(**policy)


def test_injected_transport_for_unit_tests(clock: Clock) -> None:
    """An httpx MockTransport can stand in for the network (no socket at all)."""
    from authgate.testing import SigningKey, TokenFactory

    key = SigningKey("EdDSA", kid="ed")
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"keys": [key.public_jwk()]})

    source = JWKSKeySource(
        "https://keys.example/jwks.json",
        upstream=Upstream(transport=httpx.MockTransport(answer), clock=clock),
    )
    verifier = JWTVerifier(source, algorithms=["EdDSA"], clock=clock)
    assert verifier.verify(TokenFactory(key=key, clock=clock).mint("ivy"))["sub"] == "ivy"
    assert calls == ["https://keys.example/jwks.json"]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("timeout", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout])
def test_an_httpx_timeout_is_too_slow_sync_and_async(
    clock: Clock, mode: str, timeout: type[httpx.TimeoutException]
) -> None:
    """httpx's own per-read or connect timeout says the same as the total deadline: the
    upstream was too slow, never 'unreachable', whichever timer fires first."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise timeout("timed out", request=request)

    async def answer_async(request: httpx.Request) -> httpx.Response:
        return answer(request)

    source = JWKSKeySource(
        "https://keys.example/jwks.json",
        upstream=Upstream(
            transport=httpx.MockTransport(answer),
            async_transport=httpx.MockTransport(answer_async),
            clock=clock,
        ),
    )
    verifier = JWTVerifier(source, algorithms=["ES256"], clock=clock)
    minted = TokenFactory(key=SigningKey("ES256"), clock=clock).mint("ivy")

    def verify() -> object:
        if mode == "sync":
            return verifier.verify(minted)
        return asyncio.run(verifier.verify_async(minted))

    with pytest.raises(KeySourceUnavailable) as caught:
        verify()
    assert "too slow" in caught.value.detail


@pytest.mark.parametrize(
    ("claims", "reason"),
    [({"iss": "https://evil.test"}, "bad_issuer"), ({"exp": 1000}, "expired")],
    ids=["foreign-issuer", "expired"],
)
def test_hopeless_tokens_never_trigger_a_fetch(
    claims: dict[str, Any], reason: str, issuer: LocalIssuer, clock: Clock
) -> None:
    """A token with an unknown kid that could never pass (wrong iss, expired) makes no request."""
    _, verifier = make(issuer, clock)
    verifier.verify(issuer.mint())
    clock.now += 31  # past the cooldown: an unknown kid could refetch
    header = b64url(json.dumps({"alg": "ES256", "kid": "never-seen"}))
    payload = b64url(json.dumps({"iss": issuer.url, "exp": clock.now + 600} | claims))
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(f"{header}.{payload}.{b64url(b'x' * 64)}")
    assert caught.value.reason == reason
    assert issuer.jwks_requests == 1


def test_oidc_discovers_again_after_a_transport_error_on_the_jwks(clock: Clock) -> None:
    """A jwks_uri that stops answering at all (connection refused, not an HTTP status) is not
    pinned: the next fetch after the cooldown runs discovery again and follows the IdP."""
    import socket

    with socket.socket() as probe:  # a port with nothing listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks.json"

    class MovingIdP(LocalIssuer):
        """Discovery first names the issuer's own JWKS, then a dead address, then its own."""

        jwks_at: str | None = None

        def answer(self, method: str, path: str, headers: Any, body: bytes) -> Any:
            if path == self.DISCOVERY_PATH:
                return json_answer(
                    200, {"issuer": self.url, "jwks_uri": self.jwks_at or self.jwks_url}
                )
            return super().answer(method, path, headers, body)

    with MovingIdP("ES256") as idp:
        idp.factory.clock = clock
        source = OIDCKeySource(idp.url, upstream=Upstream(clock=clock))
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=idp.url, clock=clock)
        assert verifier.verify(idp.mint("a"))["sub"] == "a"
        idp.jwks_at = dead  # the IdP "moves" its keys somewhere unreachable ...
        source.jwks_uri = dead  # ... after we discovered them there
        idp.rotate()
        clock.now += 31
        with pytest.raises(InvalidToken) as caught:  # unknown kid; the pinned location refuses
            verifier.verify(idp.mint("b"))
        assert caught.value.reason == "key_not_found"
        idp.jwks_at = None  # discovery now names the working JWKS again
        clock.now += 31
        assert verifier.verify(idp.mint("c"))["sub"] == "c"
        assert idp.calls(idp.DISCOVERY_PATH) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_decompression_bomb_is_refused_unread(
    issuer: LocalIssuer, clock: Clock, mode: str
) -> None:
    """A JWKS answer with Content-Encoding (here 256 MiB of zeros as gzip, gzip, a few hundred
    bytes on the wire) is refused before anything is inflated: peak memory stays far below
    the 200 MiB bound, and the answer is our 503, not the client's 401."""
    import tracemalloc

    from authgate.testing.servers import _bomb

    assert len(_bomb()) < 2048  # built (by the server, in this process) before measuring
    _, verifier = make(issuer, clock)
    issuer.fault = "bomb"
    token = issuer.mint()

    def verify() -> object:
        if mode == "sync":
            return verifier.verify(token)
        return asyncio.run(verifier.verify_async(token))

    tracemalloc.start()
    try:
        with pytest.raises(KeySourceUnavailable) as caught:
            verify()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "encoded body" in caught.value.detail
    assert peak < 20 * 1024 * 1024
    assert issuer.jwks_requests == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_server_dribbling_headers_is_cut_at_the_total_deadline(
    issuer: LocalIssuer, clock: Clock, mode: str
) -> None:
    """One header line a second never trips a per-read timeout; the exchange still ends
    within twice its total timeout (1 s here), sync and async, as our 503."""
    _, verifier = make(issuer, clock, timeout=1.0)
    issuer.fault = "slow-headers"
    token = issuer.mint()

    def verify() -> object:
        if mode == "sync":
            return verifier.verify(token)
        return asyncio.run(verifier.verify_async(token))

    started = time.monotonic()
    with pytest.raises(KeySourceUnavailable) as caught:
        verify()
    assert time.monotonic() - started < 2.0
    assert "too slow" in caught.value.detail


def test_an_unparseable_discovered_jwks_uri_fails_the_fetch_without_jamming(
    clock: Clock,
) -> None:
    """A discovery document naming 'http://[::1' used to raise ValueError out of the fetch,
    leaving the source 'in flight' forever. It is a failed fetch (503), and the next fetch
    after the cooldown runs again."""

    class BrokenIdP(LocalIssuer):
        jwks_at = "http://[::1"

        def answer(self, method: str, path: str, headers: Any, body: bytes) -> Any:
            if path == self.DISCOVERY_PATH:
                return json_answer(200, {"issuer": self.url, "jwks_uri": self.jwks_at})
            return super().answer(method, path, headers, body)

    with BrokenIdP("ES256") as idp:
        idp.factory.clock = clock
        source = OIDCKeySource(idp.url, upstream=Upstream(clock=clock))
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=idp.url, clock=clock)
        with pytest.raises(KeySourceUnavailable) as caught:
            verifier.verify(idp.mint())
        assert "not a valid URL" in caught.value.detail
        assert not source._flight.in_flight("fetch")
        idp.jwks_at = idp.jwks_url
        clock.now += 31
        assert verifier.verify(idp.mint("fixed"))["sub"] == "fixed"
        assert idp.calls(idp.DISCOVERY_PATH) == 2


@pytest.mark.parametrize(
    ("spelling", "said"),
    [
        pytest.param(
            "{url}/api/oidc", "answered HTTP 404: check the issuer URL", id="a-segment-off"
        ),
        pytest.param("{url}/", "names the issuer", id="a-trailing-slash"),
    ],
)
def test_a_wrong_issuer_url_reads_as_a_mistake_not_an_outage(
    spelling: str, said: str, issuer: LocalIssuer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """An issuer off by a path segment (discovery answers 404) or by a trailing slash (the
    document names another issuer): one ERROR naming what to check, however many fetches;
    clients still get 503, as for any key source that cannot give keys."""
    import logging

    configured = spelling.format(url=issuer.url)
    source = OIDCKeySource(configured, upstream=Upstream(clock=clock))
    verifier = JWTVerifier(source, algorithms=["ES256"], issuer=configured, clock=clock)
    token = issuer.factory.mint("ada", iss=configured)
    with caplog.at_level(logging.ERROR, logger="authgate.keys"):
        for _ in range(3):
            with pytest.raises(KeySourceUnavailable):
                verifier.verify(token)
            clock.now += 31  # past the cooldown: another fetch, the same mistake
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert said in errors[0].getMessage()


def _certificate_pem(key: Any) -> str:
    """A self-signed certificate for ``key``'s public half, as Google's map holds them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_map_loads_statically_and_from_a_url(clock: Clock) -> None:
    """Google's and Firebase's {kid: PEM certificate} map: a static set from it verifies the
    kid's tokens (a garbage entry skipped, strict=True refuses it); CertificateKeySource
    fetches it under the JWKS fetch policy (Cache-Control honoured: one fetch)."""
    from authgate import CertificateKeySource, ConfigurationError, KeySet
    from authgate.testing import FakeServer, SigningKey, TokenFactory

    key = SigningKey("RS256", kid="8a63fe71e53067524cbbc6a3a58463b3864c0787")
    factory = TokenFactory(key=key, issuer="https://securetoken.google.com/my-project", clock=clock)
    document = {key.kid: _certificate_pem(key.private), "broken": "-----BEGIN CERTIFICATE-----"}
    keys = KeySet.from_certificates(document)
    assert keys.kids() == {key.kid}
    verifier = JWTVerifier(keys, algorithms=["RS256"], clock=clock)
    assert verifier.verify(factory.mint("uid-1"))["sub"] == "uid-1"
    with pytest.raises(ConfigurationError, match="certificate rejected"):
        KeySet.from_certificates(document, strict=True)

    class Google(FakeServer):
        def answer(self, method: str, path: str, headers: Any, body: bytes) -> Any:
            if path == "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com":
                return json_answer(200, document, {"cache-control": "public, max-age=19000"})
            return super().answer(method, path, headers, body)

    with Google() as google:
        url = google.url + "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
        source = CertificateKeySource(url, upstream=Upstream(clock=clock))
        remote = JWTVerifier(source, algorithms=["RS256"], clock=clock)
        for subject in ("a", "b", "c"):
            assert remote.verify(factory.mint(subject))["sub"] == subject
        assert google.calls(url.removeprefix(google.url)) == 1
