"""authgate demo: a protected app against an embedded identity provider, over real HTTP.

Starts a LocalIssuer (JWKS + OIDC discovery) and a small Starlette app wrapped by
AuthGateMiddleware under uvicorn, both on 127.0.0.1 with free ports, then sends a scripted set
of requests and prints each answer. Exits 0 when every answer is the expected one.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from authgate import Authenticator, JWTProvider, JWTVerifier, KeyFetchPolicy, OIDCKeySource
from authgate.asgi import AuthGateMiddleware
from authgate.testing import LocalIssuer, SigningKey, b64url, serve_asgi

AUDIENCE = "demo-api"


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse({"subject": user.subject, "verified_by": user.verified_by})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@dataclass
class Case:
    label: str
    headers: Callable[[], dict[str, str]]
    status: int
    expect: str  # the subject, or a fragment of the rejection message
    path: str = "/whoami"
    before: Callable[[], None] | None = None


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def main() -> int:
    with LocalIssuer("RS256", audience=AUDIENCE) as issuer:
        verifier = JWTVerifier(
            # a short unknown-kid cooldown so the demo can show a rotation (default: 30 s)
            OIDCKeySource(issuer.url, policy=KeyFetchPolicy(cooldown=0.2)),
            algorithms=["RS256"],
            issuer=issuer.url,
            audience=AUDIENCE,
        )
        auth = Authenticator([JWTProvider("local-idp", verifier)], realm="demo")
        app = AuthGateMiddleware(
            Starlette(routes=[Route("/whoami", whoami), Route("/health", health)]),
            auth,
            exclude_paths=("/health",),
        )
        valid = issuer.mint("alice")
        stranger = SigningKey("RS256")  # a key the issuer never published
        unsigned = f"{b64url(json.dumps({'alg': 'none'}))}.{b64url(json.dumps({'sub': 'x'}))}."

        def rotate() -> None:
            issuer.rotate()
            time.sleep(0.25)  # past the cooldown: the unknown kid triggers one refetch

        cases = [
            Case("valid token", lambda: bearer(valid), 200, "alice"),
            Case("same token again", lambda: bearer(valid), 200, "alice"),
            Case("expired", lambda: bearer(issuer.mint("bob", exp=int(time.time()) - 3600)), 401, "expired"),
            Case("wrong audience", lambda: bearer(issuer.mint("carol", aud="other")), 401, "audience"),
            Case("alg: none", lambda: bearer(unsigned), 401, "segment of the token is empty"),
            Case("unknown signing key", lambda: bearer(issuer.factory.mint("dave", key=stranger)), 401, "no configured key"),
            Case("rotated key", lambda: bearer(issuer.mint("erin")), 200, "erin", before=rotate),
            Case("no credential", dict, 401, "authentication required"),
            Case("two credentials", lambda: {**bearer(valid), "x-api-key": "k"}, 400, "not both"),
            Case("excluded /health", dict, 200, "ok", path="/health"),
        ]  # fmt: skip
        failures = 0
        with serve_asgi(app) as base_url, httpx.Client(base_url=base_url) as client:
            print(f"protected app: {base_url}   identity provider: {issuer.url}\n")
            print(f"{'request':<21}{'status':>6}  {'subject / reason':<50}{'ms':>7}")
            print("-" * 86)
            for case in cases:
                if case.before is not None:
                    case.before()
                started = time.perf_counter()
                response = client.get(case.path, headers=case.headers())
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    shown = response.json()["message"]
                elif case.path == "/health":
                    shown = response.text
                else:
                    body = response.json()
                    shown = f"{body['subject']} (verified: {body['verified_by']})"
                good = response.status_code == case.status and case.expect in shown
                failures += not good
                mark = "" if good else f"  <-- expected {case.status} {case.expect!r}"
                print(
                    f"{case.label:<21}{response.status_code:>6}  {shown[:50]:<50}{elapsed:>7.1f}{mark}"
                )
        print(f"\nkey fetches: {issuer.requests['/.well-known/jwks.json']} JWKS, "
              f"{issuer.requests['/.well-known/openid-configuration']} discovery")  # fmt: skip
    print("all answers as expected" if not failures else f"{failures} UNEXPECTED ANSWERS")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
