"""An app served by uvicorn in tests/test_operating.py: the README's two logging lines, then a
protected Starlette app (the refusal line must reach uvicorn's stderr)."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authgate import Authenticator, JWTProvider, JWTVerifier, KeySet
from authgate.asgi import AuthGateMiddleware

logging.getLogger("authgate").addHandler(logging.StreamHandler())
logging.getLogger("authgate").setLevel(logging.INFO)

verifier = JWTVerifier(
    KeySet.from_secret(b"a logging-test secret of 32 bytes!"),
    algorithms=["HS256"],
    issuer="https://logging.test",
)
app = AuthGateMiddleware(
    Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))]),
    Authenticator([JWTProvider("idp", verifier)]),
)
