"""Introspection against a real OAuth 2.0 server: django-oauth-toolkit under gunicorn on
127.0.0.1 (``tests/dot_site.py``), its tokens issued by its own token endpoint, answered as DOT
answers (``username``, ``client_id``, ``scope``, ``exp``; no ``sub``, no ``iss``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    InvalidToken,
    ProviderUnavailable,
    RemotePolicy,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import free_port, serve_asgi

from .conftest import remember_secret
from .dot_site import CLIENTS, PASSWORD, USER
from .processes import ROOT, served

WEB_ID, WEB_SECRET, _ = CLIENTS["web"]
SERVICE_ID, SERVICE_SECRET, _ = CLIENTS["service"]
for _secret in (WEB_SECRET, SERVICE_SECRET, PASSWORD):
    remember_secret(_secret)


@pytest.fixture(scope="module")
def dot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """django-oauth-toolkit's endpoints, under gunicorn, over a fresh database."""
    env = {"AUTHGATE_DOT_DB": str(tmp_path_factory.mktemp("dot") / "db.sqlite3")}
    subprocess.run(
        [sys.executable, "-m", "tests.dot_site"], cwd=ROOT, env={**os.environ, **env}, check=True
    )
    port = free_port()
    command = ["-m", "gunicorn", "-w", "2", "--bind", f"127.0.0.1:{port}",
               "tests.dot_site:application()"]  # fmt: skip
    with served(command, port, env) as url:
        yield url


def issued(dot: str, **form: str) -> dict[str, Any]:
    """What DOT's token endpoint issues (client authentication: HTTP Basic)."""
    client = (WEB_ID, WEB_SECRET) if form.get("grant_type") == "password" else (
        SERVICE_ID, SERVICE_SECRET)  # fmt: skip
    answer = httpx.post(f"{dot}/o/token/", data=form, auth=client)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    remember_secret(body["access_token"])
    remember_secret(body.get("refresh_token"))
    return body


def user_token(dot: str, scope: str = "read") -> dict[str, Any]:
    return issued(dot, grant_type="password", username=USER, password=PASSWORD, scope=scope)


def authenticator(dot: str, auth: ClientAuth | None = None, ttl: float = 30.0) -> Authenticator:
    provider = IntrospectionProvider(
        "dot",
        f"{dot}/o/introspect/",
        auth=auth or ClientAuth.basic(SERVICE_ID, SERVICE_SECRET),
        policy=RemotePolicy(success_ttl=ttl),
    )
    return Authenticator([provider])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_users_token_is_that_user_with_its_scopes(dot: str) -> None:
    """DOT names the resource owner in ``username`` (no ``sub``): the principal is the user,
    never the client that asked for the token."""
    token = user_token(dot, "read write")
    principal = authenticator(dot).authenticate(bearer(token["access_token"]))
    assert principal is not None
    assert principal.subject == USER
    assert {"read", "write"} <= principal.scopes
    assert principal.claims["client_id"] == WEB_ID
    assert principal.expires_at is not None


def test_a_client_credentials_token_is_its_client(dot: str) -> None:
    token = issued(dot, grant_type="client_credentials", scope="read")
    principal = authenticator(dot).authenticate(bearer(token["access_token"]))
    assert principal is not None
    assert principal.subject == SERVICE_ID


def test_a_revoked_token_is_refused_once_its_acceptance_expires(dot: str) -> None:
    """DOT's revocation endpoint deletes the token; with acceptances cached 0 s, the next
    request is refused (DOT answers ``active: false``)."""
    token = user_token(dot)
    auth = authenticator(dot, ttl=0)
    assert auth.authenticate(bearer(token["access_token"])) is not None
    revoked = httpx.post(f"{dot}/o/revoke_token/", data={"token": token["access_token"]},
                         auth=(WEB_ID, WEB_SECRET))  # fmt: skip
    assert revoked.status_code == 200
    with pytest.raises(InvalidToken, match="not active"):
        auth.authenticate(bearer(token["access_token"]))


@pytest.mark.parametrize("what", ["refresh-token", "junk"])
def test_what_is_no_access_token_is_refused(dot: str, what: str) -> None:
    """A refresh token (DOT introspects access tokens only) or a made-up value: not active."""
    value = user_token(dot)["refresh_token"] if what == "refresh-token" else "x" * 30
    with pytest.raises(InvalidToken, match="not active"):
        authenticator(dot).authenticate(bearer(value))


def test_our_wrong_client_secret_is_an_outage_not_the_tokens_fault(dot: str) -> None:
    """DOT refuses our client credentials: a 503 for the request (the operator's mistake,
    logged as such), never the token's 401."""
    token = user_token(dot)
    auth = authenticator(dot, ClientAuth.basic(SERVICE_ID, "wrong-secret"))
    with pytest.raises(ProviderUnavailable) as caught:
        auth.authenticate(bearer(token["access_token"]))
    assert "client credentials" in caught.value.detail


def test_introspecting_with_a_token_of_our_own(dot: str) -> None:
    """DOT's other way for a resource server: a Bearer token with the ``introspection``
    scope."""
    ours = issued(dot, grant_type="client_credentials", scope="introspection")["access_token"]
    token = user_token(dot)
    principal = authenticator(dot, ClientAuth.bearer(ours)).authenticate(
        bearer(token["access_token"])
    )
    assert principal is not None
    assert principal.subject == USER


def test_a_starlette_app_under_uvicorn_behind_dot(dot: str) -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.identity})

    app = AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), authenticator(dot))
    token = user_token(dot)["access_token"]
    with serve_asgi(app) as base:
        for _ in range(2):  # introspected, then cached
            answer = httpx.get(base + "/whoami", headers=bearer(token))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"user": USER}
        refused = httpx.get(base + "/whoami", headers=bearer("y" * 30))
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_the_site_is_real(dot: str) -> None:
    """The fixture serves django-oauth-toolkit itself, not a fake: its token endpoint refuses
    a wrong password as OAuth says (400 ``invalid_grant``)."""
    answer = httpx.post(
        f"{dot}/o/token/",
        data={"grant_type": "password", "username": USER, "password": "wrong"},
        auth=(WEB_ID, WEB_SECRET),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
