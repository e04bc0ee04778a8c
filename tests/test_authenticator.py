"""The Authenticator: routing among providers, the verified-token cache, the principal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from authgate import (
    ANONYMOUS,
    Authenticator,
    CacheLimits,
    ConfigurationError,
    Credential,
    CrossOrigin,
    InvalidToken,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    Principal,
    TokenCookie,
)
from authgate.testing import LocalIssuer, SigningKey, TokenFactory

from .conftest import NOW, Clock


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock at the tests' frozen 'now'."""
    return Clock(NOW)


@pytest.fixture
def acme(rs256: SigningKey, clock: Clock) -> TokenFactory:
    """Tokens of the 'acme' issuer."""
    return TokenFactory(key=rs256, issuer="https://acme.test", clock=clock)


@pytest.fixture
def globex(signing_keys: dict[str, SigningKey], clock: Clock) -> TokenFactory:
    """Tokens of the 'globex' issuer (ES256)."""
    return TokenFactory(key=signing_keys["ES256"], issuer="https://globex.test", clock=clock)


@pytest.fixture
def auth(acme: TokenFactory, globex: TokenFactory, clock: Clock) -> Authenticator:
    """Two providers, routed by issuer."""
    return Authenticator(
        [
            JWTProvider(
                "acme",
                JWTVerifier(
                    acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
                ),
            ),
            JWTProvider(
                "globex",
                JWTVerifier(
                    globex.keyset(), algorithms=["ES256"], issuer="https://globex.test", clock=clock
                ),
            ),
        ],
        clock=clock,
    )


def test_routes_by_unverified_issuer(
    auth: Authenticator, acme: TokenFactory, globex: TokenFactory
) -> None:
    """Each token reaches the provider whose issuer it names."""
    assert auth.authenticate(bearer(acme.mint("a"))).provider == "acme"  # type: ignore[union-attr]
    assert auth.authenticate(bearer(globex.mint("g"))).provider == "globex"  # type: ignore[union-attr]


def test_unknown_issuer_is_refused_without_any_network_call(
    rs256: SigningKey, clock: Clock
) -> None:
    """A token from an unconfigured issuer fails as bad_issuer; the key source is never asked."""
    with LocalIssuer("RS256") as issuer:
        source = JWKSKeySource(issuer.jwks_url)
        auth = Authenticator(
            [
                JWTProvider("local", JWTVerifier(source, algorithms=["RS256"], issuer=issuer.url)),
                JWTProvider(
                    "other", JWTVerifier(source, algorithms=["RS256"], issuer="https://other.test")
                ),
            ]
        )
        stranger = TokenFactory(key=rs256, issuer="https://evil.test").mint()
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(bearer(stranger))
        assert caught.value.reason == "bad_issuer"
        assert issuer.jwks_requests == 0


def test_falls_back_to_a_provider_without_issuer_by_algorithm(
    signing_keys: dict[str, SigningKey], clock: Clock
) -> None:
    """With no issuer match, the first issuer-less provider allowing the alg takes the token."""
    ed, es = signing_keys["EdDSA"], signing_keys["ES256"]
    auth = Authenticator(
        [
            JWTProvider("ed", JWTVerifier(ed.keyset(), algorithms=["EdDSA"], clock=clock)),
            JWTProvider("es", JWTVerifier(es.keyset(), algorithms=["ES256"], clock=clock)),
        ],
        clock=clock,
    )
    token = TokenFactory(key=es, clock=clock).mint("x")
    assert auth.authenticate(bearer(token)).provider == "es"  # type: ignore[union-attr]


def test_opaque_bearer_without_an_opaque_provider_is_401(auth: Authenticator) -> None:
    """A Bearer value that is not a JWT, with no provider for opaque tokens, is invalid_token."""
    with pytest.raises(InvalidToken, match="not a JWT") as caught:
        auth.authenticate(bearer("rt_8f4a2b1c"))
    assert caught.value.status == 401


def test_api_key_without_a_key_provider_is_401(auth: Authenticator) -> None:
    """An x-api-key nobody accepts is invalid_token."""
    with pytest.raises(InvalidToken, match="API key"):
        auth.authenticate({"x-api-key": "sk_live_nope"})


def test_no_credential_is_none(auth: Authenticator) -> None:
    """A request without any credential yields None (the shell decides 401 or anonymous)."""
    assert auth.authenticate({"accept": "*/*"}) is None


@pytest.mark.anyio
async def test_async_entry_point(auth: Authenticator, acme: TokenFactory) -> None:
    """authenticate_async gives the same principal as authenticate."""
    token = acme.mint("same")
    principal = await auth.authenticate_async(bearer(token))
    assert principal is not None
    assert principal.subject == "same"


# -- the principal ---------------------------------------------------------------------------


def test_principal_mapping(auth: Authenticator, acme: TokenFactory) -> None:
    """Claims map to one normalized principal; claims are read-only; repr holds no token."""
    token = acme.mint(
        "u1",
        email="u1@acme.test",
        name="U One",
        tenant="t-9",
        scope="read write",
        permissions=["admin"],
    )
    principal = auth.authenticate(bearer(token))
    assert isinstance(principal, Principal)
    assert (principal.subject, principal.provider, principal.credential) == ("u1", "acme", "jwt")
    assert (principal.issuer, principal.tenant, principal.email, principal.name) == (
        "https://acme.test", "t-9", "u1@acme.test", "U One",
    )  # fmt: skip
    assert principal.scopes == {"read", "write", "admin", "authenticated"}
    assert principal.expires_at == NOW + 900
    assert principal.verified_by == "local"
    assert principal.is_authenticated
    assert principal.display_name == "U One"
    with pytest.raises(TypeError):
        principal.claims["sub"] = "other"  # type: ignore[index]
    assert token not in repr(principal)
    assert token.split(".")[1][:12] not in repr(principal)


def test_principal_starlette_attributes_follow_its_fields() -> None:
    """identity and display_name follow the fields, through replace(), and cannot be set."""
    import dataclasses

    bare = Principal(subject="u1", provider="p")
    assert (bare.identity, bare.display_name, bare.is_authenticated) == ("u1", "u1", True)
    mailed = dataclasses.replace(bare, email="u1@acme.test")
    assert mailed.display_name == "u1@acme.test"
    named = dataclasses.replace(mailed, subject="u2", name="U Two")
    assert (named.identity, named.display_name) == ("u2", "U Two")
    with pytest.raises((AttributeError, TypeError)):  # a property (TypeError: CPython 3.10/11)
        named.identity = "someone else"  # type: ignore[misc]
    assert named.identity == "u2"
    assert "identity" not in repr(named)


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "a b  c"}, {"a", "b", "c"}),
        ({"scp": ["a", "b"]}, {"a", "b"}),
        ({"scp": "a b"}, {"a", "b"}),
        ({"permissions": ["x", 3]}, {"x"}),
        ({"scope": 42}, set()),
    ],
)
def test_scopes_from_claims(
    claims: dict[str, Any], scopes: set[str], auth: Authenticator, acme: TokenFactory
) -> None:
    """scope (space-separated), scp (string or list) and permissions all feed scopes; every
    principal also holds "authenticated" (Starlette's convention)."""
    principal = auth.authenticate(bearer(acme.mint(**claims)))
    assert principal is not None
    assert principal.scopes == scopes | {"authenticated"}


def test_anonymous_is_falsy_and_unauthenticated() -> None:
    """The anonymous user is Starlette-compatible and has no scopes."""
    assert not ANONYMOUS
    assert ANONYMOUS.is_authenticated is False
    assert ANONYMOUS.scopes == frozenset()


# -- the cache -------------------------------------------------------------------------------


def test_second_request_is_a_cache_hit(auth: Authenticator, acme: TokenFactory) -> None:
    """The same token again is served from the cache: the same principal, counted as a hit."""
    token = acme.mint()
    first = auth.authenticate(bearer(token))
    second = auth.authenticate(bearer(token))
    assert first is not None
    assert second is not None
    assert second is first
    assert (auth.stats.hits, auth.stats.misses) == (1, 1)


def test_cache_entry_never_outlives_exp(
    auth: Authenticator, acme: TokenFactory, clock: Clock
) -> None:
    """A hit re-checks exp with the same clock; past exp the cache answers nothing."""
    token = acme.mint(exp=int(NOW) + 60)
    credential = Credential("bearer", token)
    auth.authenticate(bearer(token))
    clock.now = NOW + 59.9
    auth.authenticate(bearer(token))
    assert auth.stats.hits == 1
    clock.now = NOW + 60
    assert auth._cached(credential) is None
    # inside the leeway the verifier still accepts it, but it is not cached past exp again
    assert auth.authenticate(bearer(token)).verified_by == "local"  # type: ignore[union-attr]
    assert auth._cached(credential) is None
    clock.now = NOW + 90
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(token))
    assert caught.value.reason == "expired"


def test_not_yet_valid_window_is_not_cached(auth: Authenticator, acme: TokenFactory) -> None:
    """A token accepted only thanks to leeway on nbf is verified again next time, not cached."""
    token = acme.mint(nbf=int(NOW) + 10)
    assert auth.authenticate(bearer(token)).verified_by == "local"  # type: ignore[union-attr]
    assert auth.authenticate(bearer(token)).verified_by == "local"  # type: ignore[union-attr]


def test_cache_is_keyed_by_the_whole_token(auth: Authenticator, acme: TokenFactory) -> None:
    """A token sharing the signature but not the payload misses the cache and fails."""
    good = acme.mint("alice")
    auth.authenticate(bearer(good))
    h, _, s = good.split(".")
    other_payload = acme.mint("mallory").split(".")[1]
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(f"{h}.{other_payload}.{s}"))
    assert caught.value.reason == "bad_signature"


def test_cache_is_bounded_in_entries_and_bytes(acme: TokenFactory, clock: Clock) -> None:
    """Neither the entry bound nor the byte bound is ever exceeded."""
    verifier = JWTVerifier(
        acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
    )
    auth = Authenticator(
        [JWTProvider("acme", verifier)], cache=CacheLimits(max_entries=10), clock=clock
    )
    for i in range(25):
        auth.authenticate(bearer(acme.mint(f"u{i}")))
    assert auth.cache is not None
    assert len(auth.cache) == 10
    small = Authenticator(
        [JWTProvider("acme", verifier)], cache=CacheLimits(max_bytes=6000), clock=clock
    )
    for i in range(25):
        small.authenticate(bearer(acme.mint(f"u{i}", padding="x" * 200)))
    assert small.cache is not None
    assert 0 < small.cache.size_bytes <= 6000
    assert len(small.cache) < 25


def test_cache_entries_mapping_is_never_replaced(acme: TokenFactory, clock: Clock) -> None:
    """The shells' hit paths hold ``cache.entries``: every write, eviction, revocation and
    clear must act on that same dict, or they would keep serving what the cache forgot."""
    verifier = JWTVerifier(
        acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
    )
    auth = Authenticator(
        [JWTProvider("acme", verifier)], cache=CacheLimits(max_entries=3), clock=clock
    )
    assert auth.cache is not None
    held = auth.cache.entries
    tokens = [acme.mint(f"u{i}") for i in range(5)]
    for token in tokens:  # fills past the bound: evictions
        auth.authenticate(bearer(token))
    assert auth.cache.entries is held
    assert len(held) == 3
    auth.revoke(tokens[-1])
    auth.revoke(subject="u3", issued_before=clock.now + 1)  # the frozen clock is its iat
    assert auth.cache.entries is held
    assert len(held) == 1
    auth.cache.clear()
    assert auth.cache.entries is held
    assert not held


def test_cache_can_be_disabled(acme: TokenFactory, clock: Clock) -> None:
    """cache=None verifies every time."""
    verifier = JWTVerifier(
        acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
    )
    auth = Authenticator([JWTProvider("acme", verifier)], cache=None, clock=clock)
    token = acme.mint()
    assert auth.authenticate(bearer(token)).verified_by == "local"  # type: ignore[union-attr]
    assert auth.authenticate(bearer(token)).verified_by == "local"  # type: ignore[union-attr]


def test_cache_under_threads(acme: TokenFactory, clock: Clock) -> None:
    """16 threads hammering 50 tokens with a small cache: every answer right, bounds kept."""
    verifier = JWTVerifier(
        acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
    )
    auth = Authenticator(
        [JWTProvider("acme", verifier)], cache=CacheLimits(max_entries=20), clock=clock
    )
    tokens = [(f"u{i}", acme.mint(f"u{i}")) for i in range(50)]
    errors: list[str] = []

    def work(offset: int) -> None:
        for j in range(200):
            subject, token = tokens[(offset + j) % len(tokens)]
            principal = auth.authenticate(bearer(token))
            if principal is None or principal.subject != subject:
                errors.append(subject)

    threads = [threading.Thread(target=work, args=(k * 7,)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert auth.cache is not None
    assert len(auth.cache) <= 20


@pytest.mark.parametrize("providers", [[], "dupes"], ids=["none", "duplicate-names"])
def test_bad_authenticator_configuration(providers: Any, acme: TokenFactory) -> None:
    """No providers, or two with one name, fail at construction."""
    if providers == "dupes":
        verifier = JWTVerifier(acme.keyset(), algorithms=["RS256"])
        providers = [JWTProvider("x", verifier), JWTProvider("x", verifier)]
    with pytest.raises(ConfigurationError):
        Authenticator(providers)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Tests here start no background threads of their own that outlive them."""
    before = threading.active_count()
    yield
    assert threading.active_count() <= before + 1


def test_routing_checks_the_shape_first_and_names_the_algorithm(
    auth: Authenticator, signing_keys: dict[str, SigningKey]
) -> None:
    """With several providers: an unsigned token is malformed; an iss-less token of an algorithm
    no provider takes is alg_not_allowed; an unknown iss is bad_issuer."""
    import json

    from authgate.testing import b64url

    unsigned = f"{b64url(json.dumps({'alg': 'none'}))}.{b64url(json.dumps({'sub': 'x'}))}."
    eddsa = TokenFactory(key=signing_keys["EdDSA"]).mint()
    foreign = TokenFactory(key=signing_keys["EdDSA"], issuer="https://elsewhere.test").mint()
    for token, reason in (
        (unsigned, "malformed"),
        (eddsa, "alg_not_allowed"),
        (foreign, "bad_issuer"),
    ):
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(bearer(token))
        assert caught.value.reason == reason


def test_oversized_credentials_are_refused_before_routing(auth: Authenticator) -> None:
    """A 1 MB Bearer value or API key is too_large before any routing peek or parsing."""
    huge = "eyJ" + "A" * 1_000_000 + ".e30.c2ln"
    for headers in (bearer(huge), {"x-api-key": "k" * 1_000_000}):
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(headers)
        assert caught.value.reason == "too_large"


TYPICAL = {
    "iat": 1_796_402_992,
    "jti": "0123456789abcdef",
    "iss": "https://login.example.com",
    "scope": "openid profile email orders:read",
    "email": "jane.doe@example.com",
}


@pytest.mark.parametrize(
    ("shape", "bound"),
    [
        pytest.param(TYPICAL, 0.10, id="typical"),
        pytest.param({}, 0.10, id="plain"),
        pytest.param({"roles": [f"role-{i}" for i in range(300)]}, 0.10, id="long-string-list"),
        pytest.param({"scope": " ".join(f"s{i}" for i in range(200))}, 0.10, id="many-scopes"),
        pytest.param({f"r{i}": [i] for i in range(200)}, 0.25, id="many-small-lists"),
        pytest.param({f"m{i}": {"a": {"b": i}} for i in range(100)}, 0.25, id="nested-objects"),
    ],
)
def test_the_cache_byte_estimate_matches_what_entries_hold(
    shape: dict[str, Any], bound: float
) -> None:
    """The cache's byte estimate is within 10 % of what its entries really hold (tracemalloc)
    for claims as tokens carry them, and within 25 % for many tiny containers (whose one-letter
    names and small ints CPython shares). Measured in a fresh interpreter: tracemalloc counts
    every thread's allocations, and a test run's leftover threads are not the cache's."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(shape)],
        capture_output=True,
        text=True,
        check=True,
    )
    estimate, held, emptied = (int(n) for n in done.stdout.split())
    ratio = estimate / held
    assert 1 - bound <= ratio <= 1 + bound, f"estimate {estimate} vs held {held}"
    assert emptied == 0  # what goes is what came: the estimate returns to zero


_MEASURE = """
import base64, json, sys, tracemalloc
from authgate._cache import TokenCache
from authgate.principal import principal_from_claims

shape = json.loads(sys.argv[1])
cache = TokenCache(max_entries=10_000, max_bytes=1 << 30, clock=lambda: 1_000.0)
text = json.dumps({"sub": "user", "exp": 2_000, **shape})
encoded = base64.urlsafe_b64encode(text.encode()).rstrip(b"=")


def admit(first, count):
    for i in range(first, first + count):
        claims = json.loads(text)  # as the verifier would decode them
        if "jti" in claims:
            claims["jti"] = f"{i:016x}"
        principal = principal_from_claims(claims, provider="p")
        key = b"Bearer eyJhbGciOiJIUzI1NiJ9." + encoded + b".sig%05d" % i
        cache.put(key, principal, valid_until=2_000.0)


admit(90_000, 50)  # warm: what the first entries allocate once (shared sets, caches) is no entry's
while len(cache):
    cache.discard(next(iter(cache.entries.values()))[2])
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
admit(0, 300)
held = tracemalloc.get_traced_memory()[0] - before
tracemalloc.stop()
assert len(cache) == 300
estimate = cache.size_bytes
while len(cache):
    cache.discard(next(iter(cache.entries.values()))[2])
print(estimate, held, cache.size_bytes)
"""


def test_the_expiring_map_is_bounded_first_in_first_out_and_honours_deadlines() -> None:
    """The remote results' map: entries read as absent after their deadline; full, the
    oldest goes first; a rewrite moves a key to the back."""
    from authgate._cache import Expiring

    now = [1000.0]
    memo: Expiring[str, int] = Expiring(3, lambda: now[0])
    for i, key in enumerate("abc"):
        memo.put(key, i, deadline=1010.0)
    memo.put("a", 9, deadline=1010.0)  # rewritten: now the newest
    memo.put("d", 3, deadline=1005.0)  # full: the oldest ("b") goes
    assert [memo.get(k) for k in "abcd"] == [9, None, 2, 3]
    assert len(memo) == 3
    now[0] = 1005.0
    assert memo.get("d") is None  # its deadline has come
    assert len(memo) == 2
    assert memo.get("a") == 9
    memo.clear()
    assert len(memo) == 0


@pytest.mark.parametrize("sub", [5, 5.0, True, ["5"], {"id": 5}], ids=str)
def test_a_sub_that_is_not_a_string_is_malformed(sub: Any) -> None:
    """RFC 7519: sub is a string. A number is not read as text (subject 5 would merge with
    the user "5"): the token is malformed, naming the claim."""
    from authgate.principal import principal_from_claims

    with pytest.raises(InvalidToken) as caught:
        principal_from_claims({"sub": sub, "exp": 2e9}, provider="p")
    assert (caught.value.reason, caught.value.claim) == ("malformed", "sub")
    assert principal_from_claims({"sub": "5", "exp": 2e9}, provider="p").subject == "5"


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_the_testing_kit_mints_every_algorithm_name_authgate_accepts(alg: str) -> None:
    """RFC 9864's Ed25519 and the polymorphic EdDSA both mint and verify."""
    key = SigningKey(alg)
    token = TokenFactory(key=key).mint("ed")
    verifier = JWTVerifier(key.keyset(), algorithms=[alg])
    assert verifier.verify(token)["sub"] == "ed"


@pytest.mark.parametrize("how", ["token", "subject", "jti"])
def test_a_sign_out_outlives_every_token_it_denies(
    auth: Authenticator,
    acme: TokenFactory,
    clock: Clock,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A revocation is forgotten max_token_lifetime after it (a subject's cut-off, a token
    whose exp is unknown): so no token may live longer, or it would be served again once its
    sign-out was forgotten. A longer-lived token is refused when first seen, naming exp."""
    lifetime = auth.denylist.max_token_lifetime
    assert lifetime == 86400.0
    now = int(clock.now)
    long_lived = acme.mint("ada", jti="j-long", exp=now + 10 * 86400)
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(long_lived))
    assert caught.value.claim == "exp"
    assert caught.value.message == "the token lives longer than this server accepts"
    assert "it lives 864000 s, max_token_lifetime is 86400 s: raise it" in caplog.text
    assert long_lived.split(".")[1][:20] not in caplog.text
    no_iat = acme.mint("ada", iat=None, exp=now + lifetime + 60)  # from now: too long too
    with pytest.raises(InvalidToken, match="lives longer"):
        auth.authenticate(bearer(no_iat))
    ahead = acme.mint("ada", iat=now + 10, exp=now + 10 + lifetime)  # its clock 10 s ahead
    assert auth.authenticate(bearer(ahead)) is not None
    # the longest accepted: signed out, it stays refused until it expires
    token = acme.mint("ada", jti="j-day", exp=now + lifetime)
    assert auth.authenticate(bearer(token)) is not None
    clock.now += 1  # signed out a second later (a subject's cut-off is now)
    if how == "token":
        auth.revoke(token)
    elif how == "subject":
        auth.revoke(subject="ada", issuer="https://acme.test")
    else:
        auth.revoke(jti="j-day")  # its expiry unknown to the caller
    # refused as revoked up to its exp and through the verifier's leeway (30 s), then expired
    for step, reason in ((0, "revoked"), (lifetime - 2, "revoked"), (1, "revoked"),
                         (29, "revoked"), (1, "expired")):  # fmt: skip
        clock.now += step
        with pytest.raises(InvalidToken) as refused:
            auth.authenticate(bearer(token))
        assert refused.value.reason == reason, clock.now - now


def test_a_cookie_token_from_another_site_is_refused_and_logged(
    acme: TokenFactory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Authenticator.authenticate applies the cookie's cross-site rule (an unknown method
    counts as one that changes something) and logs the origin, never the token."""
    verifier = JWTVerifier(
        acme.keyset(), algorithms=["RS256"], issuer="https://acme.test", clock=clock
    )
    auth = Authenticator([JWTProvider("acme", verifier)], clock=clock, cookie=TokenCookie("t"))
    token = acme.mint("ada")
    cookie = {
        "cookie": f"t={token}",
        "sec-fetch-site": "cross-site",
        "origin": "https://evil.example",
    }
    assert auth.authenticate(cookie, method="GET") is not None  # a safe method
    for method in ("POST", ""):
        with pytest.raises(CrossOrigin):
            auth.authenticate(cookie, method=method)
    assert "origin 'https://evil.example', sec-fetch-site 'cross-site'" in caplog.text
    assert token.split(".")[1][:20] not in caplog.text
