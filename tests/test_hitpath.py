"""The hit path is an optimisation only: on any request, a shell answers as its full path does.

Each property runs a shell twice on copies of the same random request: once as built, once
with its hit path switched off, and compares what the app saw (the principal), the rejection
(status and body) or the exception raised. The requests mix what servers send (cached and
uncached Bearer values, repeated headers, API keys, excluded paths, odd spellings) with what a
buggy caller might pass (non-bytes values, malformed header items, a lifespan scope).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    Credential,
    JWTProvider,
    JWTVerifier,
    Principal,
    TokenCookie,
)
from authgate._hitpath import realm_of
from authgate.asgi import AuthGateMiddleware
from authgate.providers import Provider
from authgate.testing import DPoPClient, SigningKey, TokenFactory
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .conftest import NOW, fixed_clock

KEY = SigningKey("HS256", kid="hit", private=b"h" * 32)
FACTORY = TokenFactory(key=KEY, issuer="https://issuer.test", clock=fixed_clock)
CACHED = FACTORY.mint("cached")
OTHER = FACTORY.mint("other")  # valid, never cached beforehand
EXPIRED_IN_CACHE = FACTORY.mint("short", exp=int(NOW) + 10)
API_KEY = "ak_live_0123456789abcdef"

BEARER_VALUES = [
    f"Bearer {CACHED}",
    f"Bearer {CACHED}",
    f"Bearer {OTHER}",
    f"Bearer {EXPIRED_IN_CACHE}",
    f"Bearer  {CACHED}",
    f"bearer {CACHED}",
    f"Bearer {CACHED} ",
    f"BEARER {CACHED}",
    f" Bearer {CACHED}",
    f"Bearer {CACHED}, Bearer {CACHED}",
    "Bearer ",
    "Bearer",
    "Basic dXNlcjpwYXNz",
    f"x-api-key:{API_KEY}",
    "Bearer not.a.jwt",
    "Bearer opaque-value",
    "",
]
OWN_HEADER = "x-own-token"
NAMES = [
    b"authorization",
    b"authorization",
    b"x-api-key",
    b"cookie",
    b"host",
    b"Authorization",
    OWN_HEADER.encode(),
]


class OwnHeaderProvider(Provider):
    """A provider whose tokens arrive in a header of their own (as AWS ALB's do): a request
    carrying it beside a Bearer value is ambiguous, and refused."""

    name = "own"
    token_header = OWN_HEADER
    accepts_jwt = False

    def verify(self, credential: Credential) -> Principal:
        return Principal(subject="own-user", provider=self.name)

    async def verify_async(self, credential: Credential) -> Principal:
        return self.verify(credential)


class Clock:
    """Frozen at NOW until moved: EXPIRED_IN_CACHE is cached, then the clock passes its exp."""

    now = NOW

    def __call__(self) -> float:
        return self.now


def authenticator(clock: Clock, *, wsgi: bool = False) -> Authenticator:
    """One JWT provider and one API-key provider, with CACHED and EXPIRED_IN_CACHE cached
    (for the WSGI shell: under its str keys)."""
    ring = APIKeyRing()
    ring.add(API_KEY, subject="svc")
    verifier = JWTVerifier(
        KEY.keyset(), algorithms=["HS256"], issuer="https://issuer.test", clock=clock, leeway=0
    )
    auth = Authenticator(
        [JWTProvider("jwt", verifier), APIKeyProvider("keys", ring), OwnHeaderProvider()],
        clock=clock,
        cookie=TokenCookie("session"),
        realm="hit-realm",
    )
    if wsgi:
        assert auth.cache is not None
        auth.cache.use_text_keys()
    for token in (CACHED, EXPIRED_IN_CACHE):
        auth.authenticate({"authorization": f"Bearer {token}"})
    clock.now = NOW + 20  # EXPIRED_IN_CACHE is still in the cache, past its deadline
    return auth


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every example (asyncio.run per example is slow)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def header_value() -> st.SearchStrategy[Any]:
    """Mostly latin-1 bytes of the interesting values; sometimes a wrong type."""
    good = st.sampled_from(BEARER_VALUES).map(lambda v: v.encode("latin-1"))
    key = st.just(API_KEY.encode())
    wrong = st.sampled_from([None, f"Bearer {CACHED}", 7, bytearray(b"Bearer x")])
    return st.one_of(good, good, good, key, st.binary(max_size=12), wrong)


def header_item() -> st.SearchStrategy[Any]:
    """A (name, value) pair as servers send it; rarely a malformed item."""
    pair = st.tuples(st.sampled_from(NAMES), header_value())
    malformed = st.one_of(
        st.lists(st.sampled_from([b"authorization", f"Bearer {CACHED}".encode()]), max_size=3),
        st.tuples(st.sampled_from(NAMES), header_value(), st.just(b"extra")),
        st.just(None),
    )
    return st.one_of(pair, pair, pair, pair, pair, pair, pair, pair, malformed)


def scope_strategy() -> st.SearchStrategy[dict[str, Any]]:
    """ASGI scopes: mostly HTTP, sometimes WebSocket or lifespan; paths with and without rules."""
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["http", "http", "http", "websocket", "lifespan"]),
            "path": st.sampled_from(["/whoami", "/health", "/health/", "/"]),
            "headers": st.lists(header_item(), max_size=5),
        },
        optional={  # uvicorn's copy of the lifespan state: empty, or holding the app's keys
            "state": st.builds(
                dict, st.dictionaries(st.sampled_from(["db", "principal"]), st.just(1))
            )
        },
    )


def environ_strategy() -> st.SearchStrategy[dict[str, Any]]:
    """WSGI environs: the Authorization and x-api-key variables present or not, of any type."""
    text = st.sampled_from([*BEARER_VALUES, API_KEY, "Bearer caf\u00e9", "Bearer \u20ac"])
    value = st.one_of(text, text, text, st.sampled_from([None, 3, b"Bearer x"]))
    return st.fixed_dictionaries(
        {"PATH_INFO": st.sampled_from(["/whoami", "/health", "/health/"])},
        optional={
            "HTTP_AUTHORIZATION": value,
            "HTTP_X_API_KEY": value,
            "HTTP_X_OWN_TOKEN": value,
            "HTTP_COOKIE": st.sampled_from([f"session={CACHED}", "session=", "a=b"]),
        },
    )


def asgi_outcome(app: AuthGateMiddleware, scope: dict[str, Any], loop: Any) -> tuple[Any, ...]:
    """What the app saw, or the rejection sent, or the exception raised."""
    seen: list[Any] = []
    sent: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        state = scope.get("state", {})
        seen.append((scope.get("user"), scope.get("auth"), dict(state), realm_of(scope)))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        sent.append(message)

    app.app = inner
    try:
        loop.run_until_complete(app(scope, receive, send))
    except Exception as exc:
        return raised(exc)
    if seen:
        user, auth, principal, realm = seen[0]
        return ("app", who(user), who(auth), who(principal), realm)
    return ("rejected", *(m.get("status", m.get("code")) for m in sent), sent[-1].get("body"))


def wsgi_outcome(app: AuthGateWSGIMiddleware, environ: dict[str, Any]) -> tuple[Any, ...]:
    """What the app saw, or the status and body of the rejection, or the exception raised."""
    seen: list[Any] = []
    started: list[str] = []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get(ENVIRON_KEY))
        return [b""]

    app.app = inner
    try:
        body = app(environ, lambda status, headers: started.append(status))
    except Exception as exc:
        return raised(exc)
    if seen:
        user = seen[0]
        return ("app", who(user))
    return ("rejected", started[0], b"".join(body))


def who(user: Any) -> Any:
    """A principal as comparable data (anonymous, absent and anything else as themselves)."""
    if not user or not hasattr(user, "identity"):
        return user
    return (user.identity, user.provider, dict(user.claims))


def raised(exc: Exception) -> tuple[Any, ...]:
    """A malformed request (the server's or caller's bug) may fail with any lookup error, as
    long as both paths fail; anything else must be the same exception."""
    if isinstance(exc, TypeError | ValueError | KeyError):
        return ("caller error",)
    return ("raised", type(exc))


def never(request: Any) -> None:
    """A hit path that always sends the request the full path."""
    return None


EXCLUDES = [pytest.param((), id="no-exclusions"), pytest.param(("/health",), id="excluded")]
PROPERTY = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("exclude", EXCLUDES)
@pytest.mark.parametrize("required", [True, False])
@PROPERTY
@given(scope=scope_strategy())
def test_asgi_hit_path_answers_as_the_full_path(
    scope: dict[str, Any], exclude: tuple[str, ...], required: bool, loop: Any
) -> None:
    """On any scope, the ASGI shell answers as its full path alone answers."""
    auth = AUTH_BY_CLOCK
    fast = AuthGateMiddleware(never, auth, required=required, exclude_paths=exclude)  # type: ignore[arg-type]
    slow = AuthGateMiddleware(never, auth, required=required, exclude_paths=exclude)  # type: ignore[arg-type]
    slow._get = None  # the full path alone
    expected = asgi_outcome(slow, copy.deepcopy(scope), loop)
    assert asgi_outcome(fast, copy.deepcopy(scope), loop) == expected


@pytest.mark.parametrize("exclude", EXCLUDES)
@PROPERTY
@given(environ=environ_strategy())
def test_wsgi_hit_path_answers_as_the_full_path(
    environ: dict[str, Any], exclude: tuple[str, ...]
) -> None:
    """On any environ, the WSGI shell answers as its full path alone answers."""
    auth = WSGI_AUTH_BY_CLOCK
    fast = AuthGateWSGIMiddleware(never, auth, exclude_paths=exclude)  # type: ignore[arg-type]
    slow = AuthGateWSGIMiddleware(never, auth, exclude_paths=exclude)  # type: ignore[arg-type]
    slow._get = None  # the full path alone
    assert wsgi_outcome(fast, dict(environ)) == wsgi_outcome(slow, dict(environ))


def test_the_properties_reach_the_hit_path(loop: Any) -> None:
    """The generated requests do hit: a plain cached Bearer value is served by both hit paths
    without the full path; an expired entry and a cache miss take the full path."""
    asgi = AuthGateMiddleware(never, authenticator(Clock()))  # type: ignore[arg-type]
    wsgi = AuthGateWSGIMiddleware(never, authenticator(Clock(), wsgi=True))  # type: ignore[arg-type]
    wsgi._full = None  # type: ignore[assignment,method-assign]  # a hit never calls it
    full_calls: list[str] = []

    async def counted(scope: Any, send: Any) -> Any:
        full_calls.append("asgi")
        return await AuthGateMiddleware._authenticate(asgi, scope, send)

    asgi._authenticate = counted  # type: ignore[method-assign]
    headers = [(b"host", b"x"), (b"authorization", f"Bearer {CACHED}".encode())]
    scope: dict[str, Any] = {"type": "http", "path": "/", "headers": headers}
    assert asgi_outcome(asgi, scope, loop)[0] == "app"
    assert scope["user"].subject == "cached"
    assert scope["auth"] is scope["user"]
    assert "principal" not in scope["state"]  # one name: request.user
    assert realm_of(scope) == "hit-realm"
    assert "authgate.realm" not in scope  # in the state: a scope key more can resize the scope
    assert full_calls == []
    expired = [(b"authorization", f"Bearer {EXPIRED_IN_CACHE}".encode())]
    assert asgi_outcome(asgi, {"type": "http", "path": "/", "headers": expired}, loop)[0] == (
        "rejected"
    )
    assert full_calls == ["asgi"]
    environ: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {CACHED}"}
    assert wsgi_outcome(wsgi, environ)[0] == "app"
    assert environ[ENVIRON_KEY].subject == "cached"


@pytest.mark.parametrize(
    "scope",
    [
        {},
        {"state": None},
        {"state": "not a dict"},
        {"state": {}},
        {"state": {"authgate.realm": 7}},
        {"authgate.realm": "a scope key is not where the shell puts it"},
    ],
)
def test_realm_of_a_scope_no_shell_attached_to_is_none(scope: dict[str, Any]) -> None:
    """Only a realm the shell recorded in the state counts; anything else reads as none (and
    authgate.fastapi falls back to "api")."""
    assert realm_of(scope) is None


def test_no_cache_means_no_hit_path() -> None:
    """With the cache off, both shells take their full paths only."""
    verifier = JWTVerifier(KEY.keyset(), algorithms=["HS256"], issuer="https://issuer.test")
    auth = Authenticator([JWTProvider("jwt", verifier)], cache=None)
    asgi = AuthGateMiddleware(never, auth)  # type: ignore[arg-type]
    wsgi = AuthGateWSGIMiddleware(never, auth)  # type: ignore[arg-type]
    assert asgi._get is None
    assert wsgi._get is None


def test_wsgi_hits_compare_the_header_str_with_no_copy(loop: Any) -> None:
    """The WSGI shell keys the cache by the str the server decoded (no encode per hit, whose
    cost grows with the token); an ASGI shell over the same authenticator still answers from
    the cache, on its full path."""
    auth = authenticator(Clock())
    assert auth.cache is not None
    assert not auth.cache.text_keys
    wsgi = AuthGateWSGIMiddleware(never, auth)  # type: ignore[arg-type]
    assert auth.cache.text_keys
    assert len(auth.cache) == 0
    misses = auth.stats.misses
    environ: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {CACHED}"}
    assert wsgi_outcome(wsgi, environ)[0] == "app"  # verified, now cached under the str
    assert next(iter(auth.cache.entries.values()))[2] == f"Bearer {CACHED}"
    hits = auth.cache.hits
    assert wsgi_outcome(wsgi, dict(environ))[0] == "app"
    assert auth.cache.hits == hits + 1
    asgi = AuthGateMiddleware(never, auth)
    assert asgi._get is not None
    scope = {
        "type": "http",
        "path": "/",
        "headers": [(b"authorization", f"Bearer {CACHED}".encode())],
    }
    assert asgi_outcome(asgi, scope, loop)[0] == "app"
    assert auth.cache.hits == hits + 2  # the full path's cache lookup
    assert auth.stats.misses == misses + 1  # verified once, by the first WSGI request


AUTH_BY_CLOCK = authenticator(Clock())
WSGI_AUTH_BY_CLOCK = authenticator(Clock(), wsgi=True)


# -- the DPoP lane: a cached DPoP-bound token skips extraction, never the proof ---------------

PROVER = DPoPClient("ES256", clock=fixed_clock)
BOUND = FACTORY.mint("bound", cnf=PROVER.cnf)
DPOP_URI = "http://api.test/whoami"


def proof(method: str = "GET", uri: str = DPOP_URI, token: str = BOUND) -> str:
    return PROVER.proof(method, uri, token)


PROOF_VALUES = [
    proof(),  # good for GET, whoever sends it first
    proof(),
    proof("POST"),
    proof(uri="http://elsewhere.test/whoami"),
    proof(token=CACHED),
    f" {proof()} ",
    "not-a-jws",
    "",
]
DPOP_VALUES = [
    f"DPoP {BOUND}",
    f"DPoP {BOUND}",
    f"DPoP {BOUND}",
    f"dpop {BOUND}",
    f"DPoP  {BOUND}",
    f"DPoP {BOUND} ",
    f"Bearer {BOUND}",
    f"DPoP {CACHED}",
    f"DPoP {OTHER}",
]


def dpop_authenticator(*, own: bool = False) -> Authenticator:
    """The token bound to PROVER's key, cached under its DPoP key by one proved request; with
    ``own``, a provider whose tokens come in a header of their own too."""
    verifier = JWTVerifier(
        KEY.keyset(), algorithms=["HS256"], issuer="https://issuer.test", clock=fixed_clock
    )
    ring = APIKeyRing()
    ring.add(API_KEY, subject="svc")
    providers: list[Provider] = [JWTProvider("jwt", verifier), APIKeyProvider("keys", ring)]
    auth = Authenticator(providers + [OwnHeaderProvider()] * own, clock=fixed_clock)
    auth.authenticate(
        {"authorization": f"DPoP {BOUND}", "dpop": proof()}, method="GET", uri=DPOP_URI
    )
    return auth


def dpop_scope_strategy() -> st.SearchStrategy[dict[str, Any]]:
    """HTTP requests built of DPoP's parts, in any order: the scheme in every spelling, zero
    to two proofs (good, broken, padded, empty), zero to two Hosts (the last one counts), and
    now and then an API key, the provider's own header, a non-bytes value."""

    def value(choices: list[str]) -> st.SearchStrategy[Any]:
        encoded = st.sampled_from(choices).map(str.encode)
        return st.one_of(encoded, encoded, encoded, encoded, encoded, st.just(7))

    pair = st.tuples
    headers = st.tuples(
        st.lists(pair(st.just(b"authorization"), value(DPOP_VALUES)), min_size=1, max_size=2),
        st.lists(pair(st.just(b"dpop"), value(PROOF_VALUES)), max_size=2),
        st.lists(pair(st.just(b"host"), value(["api.test", "elsewhere.test"])), max_size=2),
        st.lists(
            pair(st.sampled_from([b"x-api-key", OWN_HEADER.encode()]), value([API_KEY])),
            max_size=1,
        ),
    ).flatmap(lambda parts: st.permutations([item for part in parts for item in part]))
    return st.fixed_dictionaries(
        {
            "type": st.just("http"),
            "method": st.sampled_from(["GET", "GET", "POST"]),
            "path": st.just("/whoami"),
            "headers": headers,
        }
    )


DPOP_AUTHS = {
    own: (dpop_authenticator(own=own), dpop_authenticator(own=own)) for own in (False, True)
}


@pytest.mark.parametrize("own", [False, True], ids=["dpop", "dpop-and-own-header"])
@PROPERTY
@given(scope=dpop_scope_strategy())
def test_asgi_dpop_lane_answers_as_the_full_path(
    scope: dict[str, Any], own: bool, loop: Any
) -> None:
    """On any request, the shell with its DPoP lane answers as its full path alone (each with
    its own replay memory, emptied first: a proof is new to both)."""
    fast_auth, slow_auth = DPOP_AUTHS[own]
    for auth in (fast_auth, slow_auth):
        assert auth._proofs is not None
        auth._proofs._seen.clear()
    fast = AuthGateMiddleware(never, fast_auth)  # type: ignore[arg-type]
    slow = AuthGateMiddleware(never, slow_auth)  # type: ignore[arg-type]
    slow._get = None  # the full path alone
    expected = asgi_outcome(slow, copy.deepcopy(scope), loop)
    assert asgi_outcome(fast, copy.deepcopy(scope), loop) == expected


def test_the_dpop_lane_is_taken_and_checks_every_proof(loop: Any) -> None:
    """A cached bound token with one proof is served without the full path, each proof
    checked: a replay, another method or URI, a proof for another token is refused there."""
    auth = dpop_authenticator()
    asgi = AuthGateMiddleware(never, auth)  # type: ignore[arg-type]
    full_calls: list[str] = []

    async def counted(scope: Any, send: Any) -> Any:
        full_calls.append("asgi")
        return await AuthGateMiddleware._authenticate(asgi, scope, send)

    asgi._authenticate = counted  # type: ignore[method-assign]

    def request(dpop: str, method: str = "GET") -> tuple[Any, ...]:
        headers = [(b"host", b"api.test"), (b"authorization", f"DPoP {BOUND}".encode())]
        scope = {"type": "http", "method": method, "path": "/whoami", "headers": headers}
        headers.append((b"dpop", dpop.encode()))
        return asgi_outcome(asgi, scope, loop)

    fresh = proof()
    served = request(fresh)
    assert (served[0], served[1][:2]) == ("app", ("bound", "jwt"))
    for wrong, reason in [
        (fresh, b"used before"),
        (proof("POST"), b"another HTTP method"),
        (proof(uri="http://elsewhere.test/whoami"), b"another URI"),
        (proof(token=CACHED), b"another access token"),
        ("not-a-jws", b"not a compact JWS"),
    ]:
        outcome = request(wrong)
        assert outcome[:2] == ("rejected", 401)
        assert reason in outcome[-1]
    assert request(proof("POST"), method="POST")[0] == "app"
    assert full_calls == []


def test_the_dpop_lane_reads_the_last_host_as_the_full_path_does(loop: Any) -> None:
    """With two ``Host`` headers, the URI a proof must name is the last one's, in the lane as
    on the full path (which reads the headers as the other servers' headers do)."""
    lane = AuthGateMiddleware(never, dpop_authenticator())  # type: ignore[arg-type]
    full = AuthGateMiddleware(never, dpop_authenticator())  # type: ignore[arg-type]
    full._get = None  # the full path alone

    async def no_full_path(scope: Any, send: Any) -> Any:
        raise AssertionError("the lane handed the request on")

    lane._authenticate = no_full_path  # type: ignore[method-assign]

    def request(app: AuthGateMiddleware, uri: str) -> tuple[Any, ...]:
        headers = [(b"host", b"elsewhere.test"), (b"host", b"api.test")]
        headers += [(b"authorization", f"DPoP {BOUND}".encode())]
        headers += [(b"dpop", proof(uri=uri).encode())]
        scope = {"type": "http", "method": "GET", "path": "/whoami", "headers": headers}
        return asgi_outcome(app, scope, loop)

    for app in (lane, full):
        assert request(app, DPOP_URI)[0] == "app"
        refused = request(app, "http://elsewhere.test/whoami")
        assert refused[:2] == ("rejected", 401)
        assert b"another URI" in refused[-1]


def test_a_request_the_dpop_lane_hands_on_counts_no_hit(loop: Any) -> None:
    """Two proof headers: the lane leaves the request to the full path, which refuses it
    (400) before any cache lookup; the lane counted no hit of its own either."""
    auth = dpop_authenticator()
    asgi = AuthGateMiddleware(never, auth)  # type: ignore[arg-type]
    assert auth.cache is not None
    hits = auth.cache.hits
    headers = [(b"authorization", f"DPoP {BOUND}".encode())]
    headers += [(b"dpop", proof().encode()), (b"dpop", proof().encode())]
    outcome = asgi_outcome(asgi, {"type": "http", "path": "/", "headers": headers}, loop)
    assert outcome[:2] == ("rejected", 400)
    assert auth.cache.hits == hits
