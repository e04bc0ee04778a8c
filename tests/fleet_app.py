"""A worker of a fleet: a Starlette app behind AuthGateMiddleware with a RedisStore, started as
its own uvicorn process by tests/test_fleet.py (the Redis URL comes from the environment).

``POST /signout`` with a token in the body revokes it (Back Office's sign-out) and answers
whether the revocation reached the store, and when the call returned. ``POST /applied`` with a
token answers when this worker applied its revocation from the store (benchmarks/fleet.py
measures propagation inside the workers with it).
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import Authenticator, BackOfficeProvider, KeySet
from authgate.asgi import AuthGateMiddleware
from authgate.dpop import DPoP
from authgate.redis import RedisStore
from authgate.revocation import token_digest

ISSUER = "https://backoffice.test"
SECRET = b"fleet-test-secret-of-at-least-32-bytes"


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity, "worker": os.getpid()})


async def signout(request: Request) -> JSONResponse:
    token = (await request.body()).decode()
    started_at = time.time()
    reached = await auth.revoke_async(token)
    answer = {"reached_store": reached, "started_at": started_at, "returned_at": time.time()}
    return JSONResponse(answer)


APPLIED: dict[str, float] = {}  # token digest -> when this worker applied its revocation


async def applied(request: Request) -> JSONResponse:
    digest = token_digest((await request.body()).decode()).hex()
    return JSONResponse({"applied_at": APPLIED.get(digest)})


store = RedisStore(
    os.environ.get("AUTHGATE_REDIS_URL", "redis://127.0.0.1:6379/0"),  # connects lazily
    timeout=float(os.environ.get("AUTHGATE_STORE_TIMEOUT", "0.05")),
    on_unavailable=os.environ.get("AUTHGATE_ON_UNAVAILABLE", "serve"),  # type: ignore[arg-type]
    retry=0.2,
    startup_timeout=float(os.environ.get("AUTHGATE_STARTUP_TIMEOUT", "10")),
)
provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
# every worker is one public URL (a proof replayed to another worker names the same URI)
auth = Authenticator(
    [provider], store=store, dpop=DPoP(base_url=os.environ.get("AUTHGATE_PUBLIC_URL"))
)


def _timed(records: list[dict[str, Any]]) -> None:
    auth._apply_revocations(records)
    now = time.time()
    if len(APPLIED) < 100_000:
        APPLIED.update((r["digest"], now) for r in records if r["kind"] == "token")


store.subscribe(_timed, auth._purge_cache, auth.denylist.records)
routes = [
    Route("/whoami", whoami),
    Route("/signout", signout, methods=["POST"]),
    Route("/applied", applied, methods=["POST"]),
]
app = AuthGateMiddleware(Starlette(routes=routes), auth, exclude_paths=["/signout", "/applied"])
