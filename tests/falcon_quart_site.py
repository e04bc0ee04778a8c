"""Falcon (WSGI and ASGI) and Quart apps written as the frameworks guide's recipes show, for
real servers: the principal in ``req.context`` (Falcon) or the scope (Quart), a sign-out
route revoking the token it is given. The HMAC secret comes from the environment."""

from __future__ import annotations

import os
from typing import Any, cast

import falcon
import falcon.asgi
from quart import Quart, request

from authgate import APIKeyProvider, APIKeyRing, Authenticator, JWTProvider, JWTVerifier, KeySet
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
