"""The app benchmarks/soak.py serves with uvicorn: a Starlette app behind authgate.

Configured from the environment: AUTHGATE_SOAK_ISSUER (the LocalIssuer's URL, whose JWKS is
fetched as usual) and AUTHGATE_SOAK_API_KEY (the one API key accepted).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    CacheLimits,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
)
from authgate.asgi import AuthGateMiddleware

ISSUER = os.environ["AUTHGATE_SOAK_ISSUER"]
ring = APIKeyRing()
ring.add(os.environ["AUTHGATE_SOAK_API_KEY"], subject="service")
verifier = JWTVerifier(
    JWKSKeySource(ISSUER + "/.well-known/jwks.json", policy=KeyFetchPolicy(cooldown=5.0)),
    algorithms=["ES256"],
    issuer=ISSUER,
)
auth = Authenticator(
    [JWTProvider("idp", verifier), APIKeyProvider("keys", ring)],
    cache=CacheLimits(max_entries=2_000, max_bytes=4 * 1024 * 1024),
)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.identity})


app = AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), auth)
