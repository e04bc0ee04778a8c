"""Falcon (WSGI and ASGI), Quart and Litestar apps written as the frameworks guide's recipes
show, for real servers: the principal in ``req.context`` (Falcon), the scope (Quart) or
``request.user`` (Litestar, with a guard on a scope), a sign-out route revoking the token it is
given. The HMAC secret comes from the environment."""

from __future__ import annotations

import os
from typing import Any, cast

import falcon
import falcon.asgi
import litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from quart import Quart, request

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    JWTProvider,
    JWTVerifier,
    KeySet,
    Principal,
)
from authgate.asgi import AuthGateMiddleware
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

ISSUER = "https://frameworks.test"
API_KEY = "fq_live_0123456789abcdefghijklmnop"


def authenticator() -> Authenticator:
    ring = APIKeyRing(prefixes=("fq_",))
    ring.add(API_KEY, subject="billing-service", scopes=["orders:read"])
    secret = os.environ["AUTHGATE_TEST_SECRET"].encode()
    verifier = JWTVerifier(KeySet.from_secret(secret), algorithms=["HS256"], issuer=ISSUER)
    return Authenticator([JWTProvider("idp", verifier), APIKeyProvider("keys", ring)])


class PrincipalInContext:
    """Falcon WSGI: the principal where Falcon apps look for request state."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = req.env[ENVIRON_KEY]


class AsyncPrincipalInContext:
    """Falcon ASGI: the same, from the scope."""

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.principal = req.scope["auth"]


def falcon_wsgi() -> Any:
    auth = authenticator()

    class Me:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"me": req.context.principal.identity}

    class SignOut:
        def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
            auth.revoke(req.bounded_stream.read().decode())
            resp.media = {"ok": True}

    app = falcon.App(middleware=[PrincipalInContext()])
    app.add_route("/me", Me())
    app.add_route("/signout", SignOut())
    return AuthGateWSGIMiddleware(app, auth)


def falcon_asgi() -> Any:
    auth = authenticator()

    class Me:
        async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            resp.media = {"me": req.context.principal.identity}

    class SignOut:
        async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            auth.revoke((await req.stream.read()).decode())
            resp.media = {"ok": True}

    app = falcon.asgi.App(middleware=[AsyncPrincipalInContext()])
    app.add_route("/me", Me())
    app.add_route("/signout", SignOut())
    return AuthGateMiddleware(cast(Any, app), auth)


def quart() -> Any:
    auth = authenticator()
    app = Quart(__name__)

    @app.get("/me")
    async def me() -> dict[str, str]:
        scope: dict[str, Any] = dict(request.scope)
        return {"me": scope["auth"].identity}

    @app.post("/signout")
    async def signout() -> dict[str, bool]:
        body = await request.get_data(as_text=True)
        auth.revoke(body if isinstance(body, str) else body.decode())
        return {"ok": True}

    wrapped: Any = AuthGateMiddleware(cast(Any, app.asgi_app), auth)
    app.asgi_app = wrapped  # type: ignore[method-assign]
    return app


def needs(scope: str) -> Any:
    """A Litestar guard: the request's principal holds ``scope``, else 403."""

    def guard(connection: ASGIConnection[Any, Any, Principal, Any], _: BaseRouteHandler) -> None:
        if scope not in connection.auth.scopes:
            raise PermissionDeniedException(f"missing scope: {scope}")

    return guard


def litestar_app() -> Any:
    auth = authenticator()

    @litestar.get("/me")
    async def me(request: litestar.Request[Principal, Principal, Any]) -> dict[str, str]:
        return {"me": request.user.identity}

    @litestar.get("/orders", guards=[needs("orders:read")])
    async def orders(request: litestar.Request[Principal, Principal, Any]) -> dict[str, str]:
        return {"orders": request.user.identity}

    @litestar.post("/signout", status_code=200)
    async def signout(request: litestar.Request[Any, Any, Any]) -> dict[str, bool]:
        auth.revoke((await request.body()).decode())
        return {"ok": True}

    return litestar.Litestar(
        [me, orders, signout],
        middleware=[DefineMiddleware(AuthGateMiddleware, authenticator=auth)],
    )
