"""authgate.fastapi over real FastAPI and Starlette apps under uvicorn: the OpenAPI security
scheme, public docs, and refusals that answer exactly as the middleware does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import APIKeyProvider, APIKeyRing, Authenticator, JWTProvider, JWTVerifier
from authgate.asgi import AuthGateMiddleware
from authgate.fastapi import PUBLIC_DOCS, add_exception_handlers, document_api_keys
from authgate.testing import TokenFactory, serve_asgi

from .apps import fastapi_app

ISSUER = "https://login.example.com"


@pytest.fixture(scope="module")
def tokens() -> TokenFactory:
    return TokenFactory("HS256", issuer=ISSUER)


def authenticator(tokens: TokenFactory, *, api_keys: bool = False) -> Authenticator:
    verifier = JWTVerifier(tokens.keyset(), algorithms=["HS256"], issuer=ISSUER)
    providers: list[Any] = [JWTProvider("login", verifier)]
    if api_keys:
        ring = APIKeyRing()
        ring.add("k" * 32, subject="svc", scopes=["orders:read"])
        providers.append(APIKeyProvider("keys", ring))
    return Authenticator(providers, realm="orders-api")


def documented_app() -> FastAPI:
    app = fastapi_app()

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(status_code=403, detail="brewing only")  # the app's own 403

    add_exception_handlers(app)
    return app


@pytest.fixture(scope="module")
def base(tokens: TokenFactory) -> Iterator[str]:
    app = AuthGateMiddleware(
        documented_app(), authenticator(tokens), required=False, exclude_paths=PUBLIC_DOCS
    )
    with serve_asgi(app) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_openapi_declares_bearer_jwt_with_each_routes_scopes(base: str) -> None:
    schema = httpx.get(base + "/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Bearer access token (verified by authgate).",
        }
    }
    paths = schema["paths"]
    assert paths["/orders"]["get"]["security"] == [{"bearerAuth": ["orders:read"]}]
    assert paths["/invoices"]["get"]["security"] == [{"bearerAuth": ["invoices:read"]}]
    assert paths["/admin"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/teapot"]["get"]


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"])
def test_the_documentation_stays_public(base: str, path: str) -> None:
    """PUBLIC_DOCS keeps /docs, /openapi.json and /redoc reachable without a token even where
    every other route requires one."""
    assert httpx.get(base + path).status_code == 200


def test_docs_show_the_authorize_button(base: str) -> None:
    """Swagger UI renders an Authorize button when the schema has a security scheme; the page
    loads the schema from /openapi.json, which declares one (checked above)."""
    page = httpx.get(base + "/docs").text
    assert "/openapi.json" in page
    assert "swagger-ui" in page


def test_a_dependency_refusal_answers_as_the_middleware_does(
    base: str, tokens: TokenFactory
) -> None:
    """With add_exception_handlers: the same body shape, challenge and cache-control as the
    middleware's own answers, not FastAPI's {"detail": ...}."""
    refused = httpx.get(base + "/invoices", headers=bearer(tokens.mint(scope="orders:read")))
    assert refused.status_code == 403
    assert refused.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "missing scope: invoices:read",
    }
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="orders-api", error="insufficient_scope", '
        'error_description="missing scope: invoices:read", scope="invoices:read"'
    )
    assert refused.headers["cache-control"] == "no-store"
    assert refused.headers["content-type"] == "application/json"


def test_anonymous_gets_the_middlewares_exact_401(base: str, tokens: TokenFactory) -> None:
    """An anonymous caller refused by a dependency (required=False lets it in) gets the very
    answer the middleware gives a request without a credential."""
    strict = AuthGateMiddleware(documented_app(), authenticator(tokens))
    with serve_asgi(strict) as strict_base:
        by_middleware = httpx.get(strict_base + "/orders")
    by_dependency = httpx.get(base + "/orders")
    assert by_dependency.status_code == by_middleware.status_code == 401
    assert by_dependency.content == by_middleware.content
    for header in ("www-authenticate", "cache-control", "content-type"):
        assert by_dependency.headers[header] == by_middleware.headers[header]


def test_the_apps_own_http_exceptions_keep_fastapis_answer(base: str) -> None:
    answer = httpx.get(base + "/teapot")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "brewing only"}


def test_without_the_handlers_the_detail_carries_the_body(tokens: TokenFactory) -> None:
    """Without add_exception_handlers, FastAPI's default: the body shape inside "detail"."""
    app = AuthGateMiddleware(fastapi_app(), authenticator(tokens))
    with serve_asgi(app) as url:
        refused = httpx.get(url + "/invoices", headers=bearer(tokens.mint()))
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": {
            "statusCode": 403,
            "error": "Forbidden",
            "message": "missing scope: invoices:read",
        }
    }
    assert "insufficient_scope" in refused.headers["www-authenticate"]


def test_starlettes_requires_answers_as_the_middleware_does(tokens: TokenFactory) -> None:
    """Starlette's @requires raises a bare 403; with the handlers it gets the same body."""

    @requires("orders:read")
    async def orders(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    inner = Starlette(routes=[Route("/orders", orders)])
    add_exception_handlers(inner)
    with serve_asgi(AuthGateMiddleware(inner, authenticator(tokens))) as url:
        ok = httpx.get(url + "/orders", headers=bearer(tokens.mint(scope="orders:read")))
        refused = httpx.get(url + "/orders", headers=bearer(tokens.mint(scope="other")))
    assert ok.status_code == 200
    assert refused.status_code == 403
    assert refused.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "this credential is not allowed here",
    }
    assert refused.headers["cache-control"] == "no-store"


def test_api_keys_are_documented_where_accepted(tokens: TokenFactory) -> None:
    with_keys = fastapi_app()
    document_api_keys(with_keys, authenticator(tokens, api_keys=True))
    schema = with_keys.openapi()
    assert schema["components"]["securitySchemes"]["apiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "An API key (verified by authgate).",
    }
    assert schema["paths"]["/orders"]["get"]["security"] == [
        {"bearerAuth": ["orders:read"]},
        {"apiKeyAuth": []},
    ]
    without = fastapi_app()
    document_api_keys(without, authenticator(tokens))
    assert "apiKeyAuth" not in without.openapi()["components"]["securitySchemes"]
