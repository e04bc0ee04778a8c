"""One worker of the fleet demo (examples/fleet.py starts two): Back Office tokens behind
AuthGateMiddleware, revocations shared through Redis (its URL from AUTHGATE_REDIS_URL)."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import Authenticator, BackOfficeProvider, KeySet
from authgate.asgi import AuthGateMiddleware
from authgate.redis import RedisStore

ISSUER = "https://backoffice.example"
SECRET = b"fleet-demo-secret-of-at-least-32-bytes"  # a demo key: never ship one in code

auth = Authenticator(
    [BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])],
    store=RedisStore(os.environ.get("AUTHGATE_REDIS_URL", "redis://127.0.0.1:6379/0"), retry=0.2),
)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity, "worker": os.getpid()})


async def signout(request: Request) -> JSONResponse:
    reached = await auth.revoke_async((await request.body()).decode())
    return JSONResponse({"reached_store": reached})


app = AuthGateMiddleware(
    Starlette(routes=[Route("/whoami", whoami), Route("/signout", signout, methods=["POST"])]),
    auth,
    exclude_paths=["/signout"],  # the demo's sign-out takes the token in its body
)
