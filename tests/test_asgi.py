"""The ASGI shell with real Starlette and FastAPI apps: principals, rejections, WebSockets."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from authgate import Authenticator, CacheLimits, JWKSKeySource, JWTProvider, JWTVerifier
from authgate.asgi import AuthGateMiddleware
from authgate.testing import LocalIssuer, TokenFactory

from .apps import DPOP, CachedKeys, fastapi_app, starlette_app

ISSUER = "https://issuer.test"


@pytest.fixture
def auth(tokens: TokenFactory) -> Authenticator:
    """One JWT provider over a static key set."""
    verifier = JWTVerifier(tokens.keyset(), algorithms=["RS256"], issuer=ISSUER)
    return Authenticator([JWTProvider("test", verifier)], realm="orders-api")


@pytest.fixture
def client(auth: Authenticator) -> Iterator[TestClient]:
    """A Starlette app behind the middleware, required auth, /health excluded."""
    app = AuthGateMiddleware(starlette_app(), auth, exclude_paths=("/health",))
    with TestClient(app) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def test_valid_token_reaches_the_app_with_a_principal(
    client: TestClient, auth: Authenticator, tokens: TokenFactory
) -> None:
    """request.user (and request.auth), provider and verified_by are all set."""
    token = tokens.mint("alice", scope="orders:read")
    first = client.get("/whoami", headers=bearer(token))
    second = client.get("/whoami", headers=bearer(token))
    assert first.status_code == 200
    assert first.json() == {
        "subject": "alice",
        "provider": "test",
        "scopes": ["authenticated", "orders:read"],
        "verified_by": "local",
    }
    assert second.json() == first.json()  # how it was verified, the first time
    assert auth.stats.hits == 1


def test_starlette_requires_decorator(client: TestClient, tokens: TokenFactory) -> None:
    """@requires works unchanged on request.auth.scopes: 200 with the scope, 403 without."""
    allowed = client.get("/orders", headers=bearer(tokens.mint(scope="orders:read other")))
    assert allowed.status_code == 200
    assert allowed.json() == {"scopes": ["authenticated", "orders:read", "other"]}
    assert client.get("/orders", headers=bearer(tokens.mint(scope="other"))).status_code == 403


def assert_rejection(response: Any, status: int, error: str | None, message_part: str) -> None:
    """Status, WWW-Authenticate and the JSON body of a rejection are as RFC 6750 wants."""
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"statusCode", "error", "message"}
    assert body["statusCode"] == status
    assert message_part in body["message"]
    assert response.headers["cache-control"] == "no-store"
    challenge = response.headers.get("www-authenticate")
    if status in (400, 401):
        assert challenge is not None
        assert challenge.startswith('Bearer realm="orders-api"')
        if error is None:
            assert "error=" not in challenge
        else:
            assert f'error="{error}"' in challenge
            assert f'error_description="{body["message"]}"' in challenge


REJECTIONS: list[Any] = [
    pytest.param(lambda t: {}, 401, None, "authentication required", id="no-credential"),
    pytest.param(lambda t: bearer(t.mint(exp=1)), 401, "invalid_token", "expired", id="expired"),
    pytest.param(lambda t: bearer(t.mint(aud="x")), 401, "invalid_token", "audience", id="audience"),
    pytest.param(lambda t: bearer("a.b.c"), 401, "invalid_token", "base64url", id="garbage-jwt"),
    pytest.param(lambda t: bearer("rt_abc"), 401, "invalid_token", "not a JWT", id="opaque"),
    pytest.param(lambda t: {"x-api-key": "sk_test_x"}, 401, "invalid_token", "API key", id="unknown-api-key"),
    pytest.param(lambda t: {"authorization": "Bearer "}, 400, "invalid_request", "empty", id="empty-bearer"),
    pytest.param(
        lambda t: {"authorization": f"Bearer {t.mint()}", "x-api-key": "k"},
        400, "invalid_request", "not both", id="two-credentials",
    ),
    pytest.param(lambda t: {"authorization": "Basic dTpw"}, 401, None, "authentication required", id="basic"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "status", "error", "message"), REJECTIONS)
def test_rejections(
    headers: Any,
    status: int,
    error: str | None,
    message: str,
    client: TestClient,
    tokens: TokenFactory,
) -> None:
    """Each bad request gets its status, RFC 6750 challenge and JSON body; the app never runs."""
    sent = headers(tokens)
    response = client.get("/whoami", headers=sent)
    assert_rejection(response, status, error, message)
    for value in sent.values():
        if len(value) > 12:
            assert value.split(" ")[-1][:20] not in response.text


def test_several_authorization_headers_are_400(client: TestClient, tokens: TokenFactory) -> None:
    """Two Authorization headers are ambiguous: 400 invalid_request."""
    token = tokens.mint()
    response = client.get(
        "/whoami",
        headers=[("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")],
    )
    assert_rejection(response, 400, "invalid_request", "several")


def test_excluded_path_skips_authentication(client: TestClient) -> None:
    """/health is served without any credential."""
    assert client.get("/health").text == "ok"


def test_optional_mode(auth: Authenticator, tokens: TokenFactory) -> None:
    """required=False lets anonymous requests in but still refuses a bad credential."""
    app = AuthGateMiddleware(starlette_app(), auth, required=False)
    with TestClient(app) as client:
        assert client.get("/whoami").json() == {"anonymous": True}
        assert client.get("/orders").status_code == 403  # @requires on the anonymous user
        assert client.get("/whoami", headers=bearer(tokens.mint(exp=1))).status_code == 401
        assert client.get("/whoami", headers=bearer(tokens.mint("bo"))).json()["subject"] == "bo"


@pytest.mark.parametrize(
    "spelling",
    ["Bearer\t{t}", "Bearer,{t}", "Bearer\t", "bearer,", "DPoP\t{t}", "dpop,{t}"],
    ids=["tab", "comma", "tab-only", "comma-only", "dpop-tab", "dpop-comma"],
)
def test_optional_mode_never_reads_a_malformed_bearer_as_anonymous(
    spelling: str, auth: Authenticator, tokens: TokenFactory
) -> None:
    """With required=False, a Bearer (or DPoP) header that is malformed is a 400, never an
    anonymous request: a client meaning to authenticate is told, not silently downgraded."""
    app = AuthGateMiddleware(starlette_app(), auth, required=False)
    value = spelling.format(t=tokens.mint("someone"))
    with TestClient(app) as client:
        answer = client.get("/whoami", headers={"authorization": value})
    assert_rejection(answer, 400, "invalid_request", "")


def test_a_dpop_bound_token_sent_as_bearer_is_refused(
    client: TestClient, tokens: TokenFactory
) -> None:
    """A token carrying cnf.jkt sent as Bearer, with no proof, is 401 (RFC 9449 §7.2), also
    the second time (never cached); a token without cnf from the same issuer passes."""
    bound = tokens.mint("bound", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    for _ in range(2):
        answer = client.get("/whoami", headers=bearer(bound))
        assert_rejection(answer, 401, "invalid_token", "bound to a client key")
    assert client.get("/whoami", headers=bearer(tokens.mint("plain"))).status_code == 200


def test_websocket_with_valid_token(client: TestClient, tokens: TokenFactory) -> None:
    """An authenticated handshake is accepted and the socket sees the principal."""
    with client.websocket_connect("/ws", headers=bearer(tokens.mint("ws-user"))) as ws:
        assert ws.receive_json()["subject"] == "ws-user"


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [({}, 'Bearer realm="orders-api"'), ({"authorization": "Bearer a.b.c"}, "invalid_token")],
    ids=["none", "bad"],
)
def test_websocket_refused_with_an_http_answer(
    headers: dict[str, str], challenge: str, client: TestClient
) -> None:
    """Starlette's TestClient offers the websocket.http.response extension: a refused
    handshake gets the HTTP answer, as a plain request would."""
    with (
        pytest.raises(WebSocketDenialResponse) as caught,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert caught.value.status_code == 401
    assert challenge in caught.value.headers["www-authenticate"]
    assert caught.value.json()["statusCode"] == 401


def test_websocket_closed_before_accept_without_the_extension(auth: Authenticator) -> None:
    """A server that does not offer the extension: the handshake is closed before accept
    with code 1008 (servers answer that with a bare 403)."""
    import asyncio

    sent: list[MutableMapping[str, Any]] = []

    async def never(scope: object, receive: object, send: object) -> None:
        raise AssertionError("the app must not run")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [], "extensions": {}}
    asyncio.run(AuthGateMiddleware(never, auth)(scope, receive, send))
    assert sent == [
        {
            "type": "websocket.close",
            "code": 1008,
            "reason": "authentication required: send 'Authorization: Bearer <token>' or "
            "'x-api-key'",
        }
    ]


def test_key_source_outage_is_503_with_retry_after() -> None:
    """Keys unreachable with nothing cached: 503 with Retry-After, never a 401."""
    with LocalIssuer("RS256") as issuer:
        issuer.fault = "down"
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url), algorithms=["RS256"], issuer=issuer.url
        )
        app = AuthGateMiddleware(starlette_app(), Authenticator([JWTProvider("idp", verifier)]))
        with TestClient(app) as client:
            response = client.get("/whoami", headers=bearer(issuer.mint()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "www-authenticate" not in response.headers
    assert response.json()["error"] == "Service Unavailable"


def test_lifespan_and_other_scopes_pass_through(auth: Authenticator) -> None:
    """Lifespan events reach the app untouched (TestClient drives startup and shutdown)."""
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return

    with TestClient(AuthGateMiddleware(app, auth)):
        pass
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize("cache", [CacheLimits(), None], ids=["hit-path", "no-cache"])
def test_every_server_takes_the_middleware_for_asgi3(
    cache: CacheLimits | None, tokens: TokenFactory
) -> None:
    """The middleware is a plain class with an ``async def __call__``: each server's own check
    finds an ASGI 3 app (uvicorn's interface detection, hypercorn's is_asgi, Starlette's
    is_async_callable), inspect answers truthfully, and no attribute pretends otherwise."""
    from hypercorn.utils import is_asgi
    from starlette._utils import is_async_callable
    from uvicorn.config import Config

    verifier = JWTVerifier(tokens.keyset(), algorithms=["RS256"], issuer=ISSUER)
    auth = Authenticator([JWTProvider("test", verifier)], cache=cache)
    middleware = AuthGateMiddleware(starlette_app(), auth)
    config = Config(middleware, lifespan="off")
    config.load()
    assert config.interface == "asgi3"
    assert is_asgi(middleware)
    assert is_async_callable(middleware)
    assert inspect.iscoroutinefunction(middleware.__call__)
    assert inspect.iscoroutinefunction(AuthGateMiddleware.__call__)
    assert list(inspect.signature(middleware).parameters) == ["scope", "receive", "send"]
    for name in ("__code__", "__defaults__", "__kwdefaults__", "_is_coroutine"):
        assert not hasattr(middleware, name)


def test_a_hit_keeps_the_middleware_in_the_traceback(
    auth: Authenticator, tokens: TokenFactory
) -> None:
    """An app failing on a cache hit shows the middleware's frame in its traceback, as any
    middleware does."""
    import traceback

    token = tokens.mint("user-1")
    auth.authenticate({"authorization": f"Bearer {token}"})  # cached
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["user"].subject)
        raise RuntimeError("the app failed")

    middleware = AuthGateMiddleware(app, auth)
    value = bearer(token)["authorization"].encode()
    scope = {"type": "http", "path": "/", "headers": [(b"authorization", value)]}

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    with pytest.raises(RuntimeError) as caught:
        asyncio.run(middleware(scope, receive, send))
    assert seen == ["user-1"]
    assert auth.stats.hits == 1
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-2:] == ["__call__", "app"]


# -- FastAPI ---------------------------------------------------------------------------------


@pytest.fixture
def fastapi_client(auth: Authenticator) -> Iterator[TestClient]:
    """A FastAPI app behind the middleware."""
    with TestClient(AuthGateMiddleware(fastapi_app(), auth)) as test_client:
        yield test_client


def test_fastapi_security_scopes(fastapi_client: TestClient, tokens: TokenFactory) -> None:
    """Security(authorize, scopes=[...]) passes with the scope and answers 403 without it."""
    ok = fastapi_client.get("/orders", headers=bearer(tokens.mint("fa", scope="orders:read")))
    assert ok.json() == {"subject": "fa"}
    denied = fastapi_client.get("/orders", headers=bearer(tokens.mint("fa", scope="other")))
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert 'scope="orders:read"' in denied.headers["www-authenticate"]
    assert denied.json()["detail"]["message"] == "missing scope: orders:read"


def test_fastapi_depends_require_scopes(auth: Authenticator, tokens: TokenFactory) -> None:
    """require_scopes as a route dependency; anonymous callers get 401 in optional mode, and
    both refusals name the authenticator's realm, also for a principal from the hit path."""
    with TestClient(AuthGateMiddleware(fastapi_app(), auth, required=False)) as client:
        assert client.get(
            "/invoices", headers=bearer(tokens.mint(scope="invoices:read"))
        ).json() == {"ok": True}
        unscoped = bearer(tokens.mint())
        for _ in range(2):  # the second answer comes from the hit path
            refused = client.get("/invoices", headers=unscoped)
            assert refused.status_code == 403
            assert refused.headers["www-authenticate"].startswith('Bearer realm="orders-api", ')
        anonymous = client.get("/invoices")
        assert anonymous.status_code == 401
        # FastAPI's own handler: HTTPException headers are a dict, the challenges one field
        assert anonymous.headers["www-authenticate"] == (
            'Bearer realm="orders-api", ' + DPOP.replace('"api"', '"orders-api"')
        )


def test_fast_path_never_bypasses_ambiguity_checks(
    client: TestClient, auth: Authenticator, tokens: TokenFactory
) -> None:
    """A cached token sent twice, or beside an x-api-key, is still a 400."""
    token = tokens.mint("cached")
    assert client.get("/whoami", headers=bearer(token)).status_code == 200
    assert client.get("/whoami", headers=bearer(token)).status_code == 200
    assert auth.stats.hits == 1
    twice = client.get("/whoami", headers=[("authorization", f"Bearer {token}")] * 2)
    assert_rejection(twice, 400, "invalid_request", "several")
    both = client.get("/whoami", headers={**bearer(token), "x-api-key": "k"})
    assert_rejection(both, 400, "invalid_request", "not both")
    spaced = client.get("/whoami", headers={"authorization": f"Bearer  {token}"})
    assert spaced.json()["subject"] == "cached"


def test_api_keys_are_never_cached() -> None:
    """An API key is verified on every request, even when its provider would allow caching,
    and ``Authorization: x-api-key:<key>`` is no credential (the full path says 401)."""
    auth = Authenticator([CachedKeys()], realm="orders-api")
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        for _ in range(2):
            ok = client.get("/whoami", headers={"x-api-key": CachedKeys.KEY})
            assert ok.json()["subject"] == "42"
        assert ok.json()["verified_by"] == "local"
        assert auth.cache is not None
        assert len(auth.cache) == 0
        disguised = client.get("/whoami", headers={"authorization": f"x-api-key:{CachedKeys.KEY}"})
    assert_rejection(disguised, 401, None, "authentication required")


def test_revocation_reaches_the_hit_path_at_once(auth: Authenticator, tokens: TokenFactory) -> None:
    """A token served from the hit path is refused on the very next request once revoked,
    by token or by subject, and cache.clear() sends everything back to the full path."""
    app = AuthGateMiddleware(starlette_app(), auth)
    first, second, third = tokens.mint("one"), tokens.mint("two"), tokens.mint("three")
    with TestClient(app) as client:
        for token in (first, second, third, first, second, third):
            assert client.get("/whoami", headers=bearer(token)).status_code == 200
        assert auth.stats.hits == 3
        auth.revoke(first)
        assert_rejection(
            client.get("/whoami", headers=bearer(first)), 401, "invalid_token", "revoked"
        )
        auth.revoke(subject="two")
        assert_rejection(
            client.get("/whoami", headers=bearer(second)), 401, "invalid_token", "revoked"
        )
        assert auth.cache is not None
        auth.cache.clear()
        assert client.get("/whoami", headers=bearer(third)).status_code == 200
        assert (auth.stats.hits, auth.stats.misses) == (3, 6)


def test_cache_hit_in_the_shell_honours_exp(tokens: TokenFactory) -> None:
    """A token cached by the ASGI shell is refused once the shared clock passes exp + leeway."""
    now = [1_900_000_000.0]
    timed = TokenFactory(key=tokens.key, issuer=ISSUER, clock=lambda: now[0])
    verifier = JWTVerifier(
        tokens.keyset(), algorithms=["RS256"], issuer=ISSUER, clock=lambda: now[0]
    )
    auth = Authenticator([JWTProvider("test", verifier)], clock=lambda: now[0], realm="orders-api")
    token = timed.mint("t", exp=int(now[0]) + 60)
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        for _ in range(2):
            assert client.get("/whoami", headers=bearer(token)).status_code == 200
        assert auth.stats.hits == 1
        now[0] += 60
        assert client.get("/whoami", headers=bearer(token)).status_code == 200
        assert (auth.stats.hits, auth.stats.misses) == (1, 2)
        now[0] += 30
        expired = client.get("/whoami", headers=bearer(token))
    assert_rejection(expired, 401, "invalid_token", "expired")


@pytest.mark.parametrize(
    "options",
    [{"authenticator": object()}, {"exclude_paths": "/health"}],
    ids=["not-an-authenticator", "paths-as-string"],
)
def test_shell_configuration_errors(options: dict[str, Any], auth: Authenticator) -> None:
    """Both shells refuse a wrong authenticator or a single string of paths at construction."""
    from authgate import ConfigurationError
    from authgate.wsgi import AuthGateWSGIMiddleware

    kwargs: dict[str, Any] = {"authenticator": auth, **options}
    authenticator = kwargs.pop("authenticator")
    shells: tuple[Any, ...] = (AuthGateMiddleware, AuthGateWSGIMiddleware)
    for shell in shells:
        with pytest.raises(ConfigurationError):
            shell(starlette_app(), authenticator, **kwargs)


def test_starlette_requires_authenticated_over_uvicorn(
    auth: Authenticator, tokens: TokenFactory
) -> None:
    """@requires("authenticated"), Starlette's own idiom: 200 for any valid token (no scope
    needed), 403 for an anonymous caller let through with required=False."""
    from authgate.testing import serve_asgi

    app = AuthGateMiddleware(starlette_app(), auth, required=False)
    with serve_asgi(app) as base, httpx.Client(base_url=base) as web:
        answer = web.get("/me", headers=bearer(tokens.mint("alice")))
        assert answer.status_code == 200
        assert answer.json() == {"user": "alice"}
        assert web.get("/me").status_code == 403
