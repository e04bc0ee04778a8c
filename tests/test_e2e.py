"""End to end over real sockets: uvicorn serving a protected app, a LocalIssuer serving keys."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from authgate import Authenticator, JWKSKeySource, JWTProvider, JWTVerifier
from authgate.asgi import AuthGateMiddleware
from authgate.testing import LocalIssuer, serve_asgi

from .apps import DPOP, starlette_app


def test_uvicorn_app_against_a_local_issuer() -> None:
    """Accepted, rejected and 50 concurrent requests over HTTP; the JWKS is fetched once."""
    with LocalIssuer("ES256", audience="api://orders") as issuer:
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url),
            algorithms=["ES256"],
            issuer=issuer.url,
            audience="api://orders",
        )
        app = AuthGateMiddleware(starlette_app(), Authenticator([JWTProvider("local", verifier)]))
        tokens = [issuer.mint(f"user-{i}", scope="orders:read") for i in range(10)]
        with serve_asgi(app) as base_url, httpx.Client(base_url=base_url) as client:
            ok = client.get("/orders", headers={"authorization": f"Bearer {tokens[0]}"})
            assert ok.status_code == 200
            assert ok.json() == {"scopes": ["authenticated", "orders:read"]}
            refused = client.get("/whoami")
            assert refused.status_code == 401
            assert refused.headers.get_list("www-authenticate") == ['Bearer realm="api"', DPOP]
            wrong = client.get(
                "/whoami", headers={"authorization": f"Bearer {issuer.mint(aud='x')}"}
            )
            assert wrong.status_code == 401
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]

            def call(i: int) -> str:
                response = client.get(
                    "/whoami", headers={"authorization": f"Bearer {tokens[i % 10]}"}
                )
                return str(response.json()["subject"])

            with ThreadPoolExecutor(max_workers=16) as pool:
                subjects = list(pool.map(call, range(50)))
        assert subjects == [f"user-{i % 10}" for i in range(50)]
        assert issuer.jwks_requests == 1
