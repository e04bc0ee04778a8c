"""The apps the middleware benchmark compares (importable by uvicorn as bench_apps:NAME)."""

from __future__ import annotations

import json
import os
from typing import Any

import jwt as pyjwt
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authgate import Authenticator, CacheLimits, JWTProvider, JWTVerifier, KeySet
from authgate.asgi import AuthGateMiddleware

ISSUER = "https://login.example.com"


async def whoami(request: Request) -> JSONResponse:
    user = request.scope.get("user")
    return JSONResponse(
        {"user": getattr(user, "identity", None) or getattr(user, "username", None)}
    )


def starlette_app(middleware: list[Middleware] | None = None) -> Starlette:
    return Starlette(routes=[Route("/whoami", whoami)], middleware=middleware)


class PyJWTBackend(AuthenticationBackend):
    """The usual Starlette recipe: decode the Bearer token with PyJWT on every request."""

    def __init__(self, key: Any, alg: str = "RS256") -> None:
        self.key = key
        self.alg = alg

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        header = conn.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = pyjwt.decode(token, self.key, algorithms=[self.alg], issuer=ISSUER)
        except pyjwt.PyJWTError as exc:
            raise AuthenticationError("invalid token") from exc
        return AuthCredentials(claims.get("scope", "").split()), SimpleUser(claims["sub"])


class PyJWTBaseHTTP(BaseHTTPMiddleware):
    """The same check written as a BaseHTTPMiddleware."""

    def __init__(self, app: Any, key: Any, alg: str = "RS256") -> None:
        super().__init__(app)
        self.key = key
        self.alg = alg

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        header = request.headers.get("authorization", "")
        try:
            claims = pyjwt.decode(header[7:], self.key, algorithms=[self.alg], issuer=ISSUER)
        except pyjwt.PyJWTError:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        request.scope["user"] = SimpleUser(claims["sub"])
        response: Response = await call_next(request)
        return response


class Noop:
    """An empty pass-through middleware: what any middleware at all costs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class Minimal:
    """The least an authenticating middleware written in Python can do: find the header (a
    Python loop), one dict lookup; no duplicate check, no expiry, no state."""

    def __init__(self, app: Any, known: dict[bytes, Any]) -> None:
        self.app = app
        self.known = known

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scope["user"] = self.known.get(value)
                break
        await self.app(scope, receive, send)


def build_apps(jwk: dict[str, Any], token: str = "") -> dict[str, Any]:
    public_key = pyjwt.PyJWK(jwk).key
    alg = jwk.get("alg", "RS256")
    verifier = JWTVerifier(KeySet.from_jwk(jwk), algorithms=[alg], issuer=ISSUER)
    auth = Authenticator([JWTProvider("bench", verifier)], cache=CacheLimits(max_entries=100_000))
    observed = Authenticator(
        [JWTProvider("bench", verifier)], cache=CacheLimits(max_entries=100_000)
    )
    from prometheus_client import CollectorRegistry

    from authgate.prometheus import instrument

    instrument(observed, CollectorRegistry())
    return {
        "prometheus": AuthGateMiddleware(starlette_app(), observed),
        "bare": starlette_app(),
        "authgate": AuthGateMiddleware(starlette_app(), auth),
        "starlette": starlette_app(
            [Middleware(AuthenticationMiddleware, backend=PyJWTBackend(public_key, alg))]
        ),
        "basehttp": starlette_app([Middleware(PyJWTBaseHTTP, key=public_key, alg=alg)]),
        "noop": Noop(starlette_app()),
        "minimal": Minimal(starlette_app(), {b"Bearer " + token.encode(): SimpleUser("user-1")}),
    }


_jwk_path = os.environ.get("AUTHGATE_BENCH_JWK")
if _jwk_path:  # served by uvicorn in the end-to-end run
    _apps = build_apps(
        json.loads(open(_jwk_path).read()),  # noqa: SIM115
        os.environ.get("AUTHGATE_BENCH_TOKEN", ""),
    )
    bare, authgate, starlette = _apps["bare"], _apps["authgate"], _apps["starlette"]
    noop, minimal = _apps["noop"], _apps["minimal"]
