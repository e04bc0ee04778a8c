"""VeryChat end to end: local HS256 with the secret, the validate endpoint without it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from authgate import (
    Authenticator,
    AuthonProvider,
    ConfigurationError,
    InvalidToken,
    JWKSKeySource,
    ProviderUnavailable,
    VeryChatProvider,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import FakeAuthon, FakeVeryChat, TokenFactory
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app


@pytest.fixture
def verychat() -> Iterator[FakeVeryChat]:
    """A running fake VeryChat."""
    with FakeVeryChat() as fake:
        yield fake


def local(fake: FakeVeryChat) -> VeryChatProvider:
    """VeryChat with the secret: local HS256."""
    return VeryChatProvider(fake.project_id, secret=fake.secret, base_url=fake.url)


def remote(fake: FakeVeryChat) -> VeryChatProvider:
    """VeryChat without the secret: the validate endpoint."""
    return VeryChatProvider(fake.project_id, base_url=fake.url)


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_valid_token(mode: str, verychat: FakeVeryChat) -> None:
    """sub is the handle, projectId the tenant; local makes no call, remote makes one."""
    provider = local(verychat) if mode == "local" else remote(verychat)
    principal = Authenticator([provider]).authenticate(bearer(verychat.get_tokens("user123")))
    assert principal is not None
    assert (principal.subject, principal.tenant, principal.verified_by) == (
        "user123",
        verychat.project_id,
        mode,
    )
    assert verychat.calls(FakeVeryChat.VALIDATE_PATH) == (0 if mode == "local" else 1)


def test_role_claims_name_the_roles(verychat: FakeVeryChat) -> None:
    """role_claims is honoured (it was accepted, then ignored). Locally: the validate
    endpoint answers only the documented sub, projectId, iat and exp."""
    provider = VeryChatProvider(
        verychat.project_id, secret=verychat.secret, base_url=verychat.url, role_claims=["roles"]
    )
    token = verychat.factory.mint(
        "user123", headers={"kid": None}, projectId=verychat.project_id, roles=["moderator"]
    )
    principal = Authenticator([provider]).authenticate(bearer(token))
    assert principal is not None
    assert principal.roles == {"moderator"}


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_leading_at_is_normalised(mode: str, verychat: FakeVeryChat) -> None:
    """A sub of '@user123' becomes 'user123', as VeryChat strips a handle's '@'."""
    provider = local(verychat) if mode == "local" else remote(verychat)
    token = verychat.get_tokens("@user123", keep_at=True)
    assert Authenticator([provider]).authenticate(bearer(token)).subject == "user123"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_another_projects_token_is_refused(mode: str, verychat: FakeVeryChat) -> None:
    """A token signed with the same secret for another projectId is 401."""
    other = TokenFactory(key=verychat.key).mint(
        "user123", headers={"kid": None}, projectId="other-project"
    )
    provider = local(verychat) if mode == "local" else remote(verychat)
    with pytest.raises(InvalidToken) as caught:
        Authenticator([provider]).authenticate(bearer(other))
    assert caught.value.status == 401


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_expired_and_forged_tokens(mode: str, verychat: FakeVeryChat) -> None:
    """Expired and wrongly signed tokens are 401 both ways."""
    provider = local(verychat) if mode == "local" else remote(verychat)
    auth = Authenticator([provider])
    forged = FakeVeryChat(project_id=verychat.project_id).get_tokens("mallory")
    for token in (verychat.get_tokens("user123", ttl=-120), forged):
        with pytest.raises(InvalidToken):
            auth.authenticate(bearer(token))
    if mode == "local":
        assert verychat.calls(FakeVeryChat.VALIDATE_PATH) == 0


def test_the_fake_requires_the_documented_body(verychat: FakeVeryChat) -> None:
    """Without {"projectId"} the endpoint answers 400: our client must send it (and does)."""
    token = verychat.get_tokens("user123")
    bare = httpx.post(verychat.url + FakeVeryChat.VALIDATE_PATH, headers=bearer(token))
    assert bare.status_code == 400
    assert Authenticator([remote(verychat)]).authenticate(bearer(token)) is not None


def test_remote_outage_is_503(verychat: FakeVeryChat) -> None:
    """The endpoint down is our outage."""
    verychat.fault = "down"
    with pytest.raises(ProviderUnavailable):
        Authenticator([remote(verychat)]).authenticate(bearer(verychat.get_tokens("user123")))


def test_bad_configuration() -> None:
    """An empty projectId or a short secret fail at start-up."""
    with pytest.raises(ConfigurationError):
        VeryChatProvider("")
    with pytest.raises(ConfigurationError, match="32 bytes"):
        VeryChatProvider("p", secret="short")


def test_beside_authon_tokens_route_by_issuer_and_algorithm(verychat: FakeVeryChat) -> None:
    """With Authon (RS256, iss) and VeryChat (HS256, no iss) together, each token finds its own."""
    with FakeAuthon() as authon:
        authon.add_user("usr_1")
        authon.factory.issuer = "https://api.authon.dev"
        auth = Authenticator(
            [
                AuthonProvider(
                    keys=JWKSKeySource(authon.jwks_url), issuer="https://api.authon.dev"
                ),
                local(verychat),
            ]
        )
        assert auth.authenticate(bearer(authon.sign_in("usr_1"))).provider == "authon"  # type: ignore[union-attr]
        assert auth.authenticate(bearer(verychat.get_tokens("user123"))).provider == "verychat"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_end_to_end_asgi_and_wsgi(mode: str, verychat: FakeVeryChat) -> None:
    """Both shells: 200 with the handle, 401 for garbage."""
    auth = Authenticator([local(verychat) if mode == "local" else remote(verychat)])
    token = verychat.get_tokens("user123")
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        assert client.get("/whoami", headers=bearer(token)).json()["subject"] == "user123"
        assert client.get("/whoami", headers=bearer("a.b.c")).status_code == 401

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    wsgi = Client(AuthGateWSGIMiddleware(app, auth))
    assert wsgi.get("/", headers=bearer(token)).data == b"user123"
    assert wsgi.get("/", headers=bearer(verychat.get_tokens("x", ttl=-100))).status_code == 401
