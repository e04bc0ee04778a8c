"""authgate demo: a protected app against embedded identity providers, over real HTTP.

Starts a LocalIssuer (JWKS + OIDC discovery), fake Authon and VeryChat servers, and a small
Starlette app under uvicorn, all on 127.0.0.1 with free ports. `/api` is protected by one
Authenticator holding every provider; `/verychat-remote` by one that validates VeryChat tokens
at VeryChat's endpoint. Sends a scripted set of requests and prints each answer; exits 0 when
every answer is the expected one.
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
from starlette.routing import Mount, Route

from authgate import (
    Authenticator,
    AuthonProvider,
    BackOfficeProvider,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
    OIDCKeySource,
    VeryChatProvider,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import (
    FakeAuthon,
    FakeVeryChat,
    LocalIssuer,
    SigningKey,
    TokenFactory,
    b64url,
    serve_asgi,
)

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
    path: str = "/api/whoami"
    before: Callable[[], None] | None = None


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


BACK_OFFICE = "https://ap.vendor.com"
SK = "sk_test_7f3a9c2e1b4d6f80a1c3e5d7"


def main() -> int:
    with (
        LocalIssuer("RS256", audience=AUDIENCE) as issuer,
        FakeAuthon() as authon,
        FakeVeryChat() as verychat,
    ):
        verifier = JWTVerifier(
            # a short unknown-kid cooldown so the demo can show a rotation (default: 30 s)
            OIDCKeySource(issuer.url, policy=KeyFetchPolicy(cooldown=0.2)),
            algorithms=["RS256"],
            issuer=issuer.url,
            audience=AUDIENCE,
        )
        backoffice = TokenFactory("RS256", issuer=BACK_OFFICE, ttl=36000)
        authon_provider = AuthonProvider(secret_key=authon.secret_key, base_url=authon.url)
        authon_provider.add_api_key(SK, subject="billing-service", scopes=["invoices:read"])
        auth = Authenticator(
            [
                JWTProvider("local-idp", verifier),
                BackOfficeProvider(BACK_OFFICE, backoffice.keyset()),
                authon_provider,
                VeryChatProvider(
                    verychat.project_id, secret=verychat.secret, base_url=verychat.url
                ),
            ],
            realm="demo",
        )
        remote_only = Authenticator(
            [VeryChatProvider(verychat.project_id, base_url=verychat.url)], realm="demo"
        )
        inner = Starlette(routes=[Route("/whoami", whoami)])
        app = Starlette(
            routes=[
                Route("/health", health),
                Mount("/api", app=AuthGateMiddleware(inner, auth)),
                Mount("/verychat-remote", app=AuthGateMiddleware(inner, remote_only)),
            ]
        )
        valid = issuer.mint("alice")
        stranger = SigningKey("RS256")  # a key the issuer never published
        unsigned = f"{b64url(json.dumps({'alg': 'none'}))}.{b64url(json.dumps({'sub': 'x'}))}."
        authon.add_user("usr_abc123")
        authon.add_user("usr_banned", banned=True)
        signed_out = backoffice.mint("7")

        def rotate() -> None:
            issuer.rotate()
            time.sleep(0.25)  # past the cooldown: the unknown kid triggers one refetch

        def sign_out() -> None:
            auth.revoke(signed_out)  # what a sign-out handler calls

        cases = [
            Case("valid token", lambda: bearer(valid), 200, "alice"),
            Case("same token again", lambda: bearer(valid), 200, "alice"),
            Case("expired", lambda: bearer(issuer.mint("bob", exp=int(time.time()) - 3600)), 401, "expired"),
            Case("wrong audience", lambda: bearer(issuer.mint("carol", aud="other")), 401, "audience"),
            Case("alg: none", lambda: bearer(unsigned), 401, "segment of the token is empty"),
            Case("unknown signing key", lambda: bearer(issuer.factory.mint("dave", key=stranger, headers={"kid": stranger.kid})), 401, "no configured key"),
            Case("rotated key", lambda: bearer(issuer.mint("erin")), 200, "erin", before=rotate),
            Case("no credential", dict, 401, "authentication required"),
            Case("two credentials", lambda: {**bearer(valid), "x-api-key": "k"}, 400, "not both"),
            Case("Authon (remote)", lambda: bearer(authon.sign_in("usr_abc123")), 200, "usr_abc123 (verified: remote)"),
            Case("Authon banned user", lambda: bearer(authon.sign_in("usr_banned")), 403, "banned"),
            Case("Authon sk_ API key", lambda: {"x-api-key": SK}, 200, "billing-service"),
            Case("VeryChat (local)", lambda: bearer(verychat.get_tokens("@user123")), 200, "user123 (verified: local)"),
            Case("VeryChat (remote)", lambda: bearer(verychat.get_tokens("user123")), 200, "user123 (verified: remote)", path="/verychat-remote/whoami"),
            Case("Back Office token", lambda: bearer(signed_out), 200, "7"),
            Case("Back Office signed out", lambda: bearer(signed_out), 401, "revoked", before=sign_out),
            Case("Back Office doc example", lambda: bearer(_doc_token()), 401, "base64url"),
            Case("excluded /health", dict, 200, "ok", path="/health"),
        ]  # fmt: skip
        failures = 0
        with serve_asgi(app) as base_url, httpx.Client(base_url=base_url) as client:
            print(f"protected app: {base_url}   identity provider: {issuer.url}\n")
            print(f"{'request':<24}{'status':>6}  {'subject / reason':<50}{'ms':>7}")
            print("-" * 89)
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
                    f"{case.label:<24}{response.status_code:>6}  {shown[:50]:<50}{elapsed:>7.1f}{mark}"
                )
        print(
            f"\nkey fetches: {issuer.jwks_requests} JWKS, {issuer.calls(issuer.DISCOVERY_PATH)} "
            f"discovery; Authon verify calls: {authon.calls(authon.VERIFY_PATH)}; "
            f"VeryChat validate calls: {verychat.calls(verychat.VALIDATE_PATH)}"
        )
    print("all answers as expected" if not failures else f"{failures} UNEXPECTED ANSWERS")
    return 0 if not failures else 1


def _doc_token() -> str:
    """The access token printed in Back Office's document (its header starts 'wy')."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "tests" / "data" / "backoffice_api.txt"
    found = re.search(r"wy[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", doc.read_text())
    if found is None:
        raise RuntimeError(f"no example token in {doc}")
    return found.group(0)


if __name__ == "__main__":
    sys.exit(main())
