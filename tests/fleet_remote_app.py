"""A worker that calls out: introspection for opaque tokens, a JWKS for JWTs, both from
servers the test runs (their URLs and credentials from the environment), sharing through a
RedisStore. Started as its own uvicorn process by tests/test_fleet.py."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
    Upstream,
)
from authgate.asgi import AuthGateMiddleware
from authgate.redis import RedisStore

env = os.environ.get


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity})


# how long a call may take, and so how long the fleet's other workers wait for its result
upstream = Upstream(timeout=float(env("AUTHGATE_UPSTREAM_TIMEOUT", "5")))
providers = [
    IntrospectionProvider(
        "idp",
        env("AUTHGATE_INTROSPECTION_URL", "http://127.0.0.1:9/introspect"),
        auth=ClientAuth.basic(
            env("AUTHGATE_CLIENT_ID", "resource-server"), env("AUTHGATE_CLIENT_SECRET", "unset")
        ),
        upstream=upstream,
    ),
    JWTProvider(
        "local",
        JWTVerifier(
            JWKSKeySource(
                env("AUTHGATE_JWKS_URL", "http://127.0.0.1:9/keys"),
                policy=KeyFetchPolicy(cooldown=float(env("AUTHGATE_JWKS_COOLDOWN", "30"))),
                upstream=upstream,
            ),
            algorithms=["ES256"],
            issuer=env("AUTHGATE_ISSUER", "http://127.0.0.1:9"),
        ),
    ),
]
store = RedisStore(
    env("AUTHGATE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    timeout=float(env("AUTHGATE_STORE_TIMEOUT", "0.05")),
    retry=0.2,
    secret=env("AUTHGATE_STORE_SECRET") or None,
)
app = AuthGateMiddleware(
    Starlette(routes=[Route("/whoami", whoami)]), Authenticator(providers, store=store)
)
