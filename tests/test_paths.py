"""exclude_paths: one table of cases, checked over real servers (uvicorn for ASGI, werkzeug's
for WSGI) with request targets sent byte for byte, as a client or attacker would spell them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.serving import make_server

from authgate import Authenticator, ConfigurationError, JWTProvider, JWTVerifier
from authgate._paths import PathRules
from authgate.asgi import AuthGateMiddleware
from authgate.testing import TokenFactory, serve_asgi
from authgate.wsgi import AuthGateWSGIMiddleware

EXCLUDE = ("/health", "/docs/*", "/.well-known/*")

# (request target, excluded?) — the README's table
CASES = [
    ("/health", True),
    ("/health?probe=1", True),  # never the query
    ("/health/", False),  # another path
    ("/healthz", False),
    ("/docs", True),
    ("/docs/", True),
    ("/docs/oauth2-redirect", True),
    ("/docsx", False),
    ("/.well-known/openid-configuration", True),
    ("/%68ealth", False),  # percent-escaped spellings never match
    ("/docs/%2e%2e/admin", False),
    ("/docs/../admin", False),  # dot segments never match
    ("/docs/./x", False),
    ("//health", False),
    ("/admin", False),
]
# werkzeug's server itself rewrites "//health" to "/health" (PATH_INFO and RAW_URI alike): the
# app routes it as /health, and the exclusion agrees with the routing.
WSGI_CASES = [(t, True if t == "//health" else e) for t, e in CASES]


def status_of(base: str, target: str) -> int:
    """GET ``target`` exactly as written (no client-side normalisation) and read the status."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def auth() -> Authenticator:
    factory = TokenFactory("HS256", issuer="https://issuer.test")
    verifier = JWTVerifier(factory.keyset(), algorithms=["HS256"], issuer="https://issuer.test")
    return Authenticator([JWTProvider("local", verifier)])


async def anything(request: Request) -> PlainTextResponse:
    return PlainTextResponse("open")


def starlette_catch_all() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", anything)])


@pytest.fixture(scope="module")
def asgi_base(auth: Authenticator) -> Iterator[str]:
    app = AuthGateMiddleware(starlette_catch_all(), auth, exclude_paths=EXCLUDE)
    with serve_asgi(app) as base:
        yield base


@pytest.fixture(scope="module")
def wsgi_base(auth: Authenticator) -> Iterator[str]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"open"]

    server = make_server("127.0.0.1", 0, AuthGateWSGIMiddleware(app, auth, exclude_paths=EXCLUDE))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(("target", "excluded"), CASES, ids=[c[0] for c in CASES])
def test_asgi_exclusions_over_uvicorn(asgi_base: str, target: str, excluded: bool) -> None:
    assert status_of(asgi_base, target) == (200 if excluded else 401)


@pytest.mark.parametrize(("target", "excluded"), WSGI_CASES, ids=[c[0] for c in CASES])
def test_wsgi_exclusions_over_werkzeug(wsgi_base: str, target: str, excluded: bool) -> None:
    assert status_of(wsgi_base, target) == (200 if excluded else 401)


def test_a_mounted_app_excludes_its_own_paths(auth: Authenticator) -> None:
    """Matching is below root_path: an app mounted at /api excludes its own /docs."""
    inner = AuthGateMiddleware(starlette_catch_all(), auth, exclude_paths=["/docs/*", "/health"])
    outer = Starlette(routes=[Mount("/api", app=inner)])
    with serve_asgi(outer) as base:
        assert status_of(base, "/api/docs") == 200
        assert status_of(base, "/api/docs/oauth2-redirect") == 200
        assert status_of(base, "/api/health") == 200
        assert status_of(base, "/api/orders") == 401
        assert status_of(base, "/api/%68ealth") == 401


def test_everything_below_root_star() -> None:
    rules = PathRules(["/*"])
    assert all(rules.matches(p) for p in ("/", "/a", "/a/b/c"))
    assert not rules.matches("/a/../b")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("health", "starting with '/'"),
        ("/docs*", "a literal path"),
        ("/a/*/b", "a literal path"),
        ("/health?x=1", "no query"),
        ("/%68ealth", "percent-escapes"),
        ("/a/../b", "'..' segments"),
        ("/a/./b/*", "'..' segments"),
    ],
)
def test_unusable_entries_fail_at_construction(entry: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="exclude_paths") as caught:
        PathRules([entry])
    assert message in str(caught.value)
