"""A worker of a fleet: a Starlette app behind AuthGateMiddleware with a RedisStore, started as
its own uvicorn process by tests/test_fleet.py (the Redis URL comes from the environment).

``POST /signout`` with a token in the body revokes it (Back Office's sign-out) and answers
whether the revocation reached the store.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import Authenticator, BackOfficeProvider, KeySet
from authgate.asgi import AuthGateMiddleware
from authgate.dpop import DPoP
from authgate.redis import RedisStore

ISSUER = "https://backoffice.test"
SECRET = b"fleet-test-secret-of-at-least-32-bytes"


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity, "worker": os.getpid()})


async def signout(request: Request) -> JSONResponse:
    token = (await request.body()).decode()
    reached = await auth.revoke_async(token)
    return JSONResponse({"reached_store": reached})


store = RedisStore(
    os.environ.get("AUTHGATE_REDIS_URL", "redis://127.0.0.1:6379/0"),  # connects lazily
    timeout=float(os.environ.get("AUTHGATE_STORE_TIMEOUT", "0.05")),
    on_unavailable=os.environ.get("AUTHGATE_ON_UNAVAILABLE", "serve"),  # type: ignore[arg-type]
    retry=0.2,
)
provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
# every worker is one public URL (a proof replayed to another worker names the same URI)
auth = Authenticator(
    [provider], store=store, dpop=DPoP(base_url=os.environ.get("AUTHGATE_PUBLIC_URL"))
)
app = AuthGateMiddleware(
    Starlette(routes=[Route("/whoami", whoami), Route("/signout", signout, methods=["POST"])]),
    auth,
    exclude_paths=["/signout"],
)
