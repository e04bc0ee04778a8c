"""Real apps protected by authgate, shared by the shell tests."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Security
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from authgate import InvalidToken, Principal, Provider
from authgate.extract import Credential
from authgate.fastapi import authorize, require_roles, require_scopes

DPOP = 'DPoP realm="api", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 EdDSA"'
"""The DPoP challenge every 401 carries beside the Bearer one (RFC 9449 §7.1), by default."""


class CachedKeys(Provider):
    """API keys from x-api-key whose principals are cached (as a remote key check's would be)."""

    KEY = "mori-4f9c2b7e1d8a6c3b"
    name = "keys"
    accepts_jwt = False
    accepts_api_keys = True

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        return from_header

    def verify(self, credential: Credential) -> Principal:
        if credential.value != self.KEY:
            raise InvalidToken("the API key is not recognised")
        return Principal(subject="42", provider="keys", credential="api_key")

    async def verify_async(self, credential: Credential) -> Principal:
        return self.verify(credential)


def whoami_body(user: Any) -> dict[str, Any]:
    """What the apps answer about the caller."""
    if not user.is_authenticated:
        return {"anonymous": True}
    return {
        "subject": user.subject,
        "provider": user.provider,
        "scopes": sorted(user.scopes),
        "verified_by": user.verified_by,
    }


async def whoami(request: Request) -> JSONResponse:
    assert request.auth is request.user
    return JSONResponse(whoami_body(request.user))


@requires("orders:read")
async def orders(request: Request) -> JSONResponse:
    return JSONResponse({"scopes": sorted(request.auth.scopes)})


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(whoami_body(websocket.user))
    await websocket.close()


def starlette_app() -> Starlette:
    """A Starlette app using request.user, request.auth and @requires."""
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/orders", orders),
            Route("/me", me),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ]
    )


ADMIN = require_roles("admin")


def fastapi_app() -> FastAPI:
    """A FastAPI app using authgate.fastapi's Security and Depends helpers."""
    app = FastAPI()

    @app.get("/orders")
    def list_orders(
        user: Principal = Security(authorize, scopes=["orders:read"]),
    ) -> dict[str, Any]:
        return {"subject": user.subject}

    @app.get("/invoices", dependencies=[Depends(require_scopes("invoices:read"))])
    def list_invoices() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/admin")
    def admin(user: Principal = Depends(ADMIN)) -> dict[str, Any]:
        return {"roles": sorted(user.roles)}

    return app
