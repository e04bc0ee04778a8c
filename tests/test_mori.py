"""Mori end to end: operator-named key source or endpoint, 2-hour lifetime, user.apiKey keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from authgate import APIKeyRing, Authenticator, ConfigurationError, InvalidToken, MoriProvider
from authgate.asgi import AuthGateMiddleware
from authgate.jwt import unverified_exp
from authgate.testing import Answer, FakeServer, SigningKey, TokenFactory, json_answer
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app

API_KEY = "mori_7f3a9c2e1b4d6f80a1c3e5"
CONTRACTS = {
    "42": {"planType": "pro", "usageLimit": 10000, "currentUsage": 1234, "planEndDate": None}
}


class OperatorEndpoint(FakeServer):
    """An endpoint the operator names for opaque Mori tokens: GET /session with the Bearer token."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, dict[str, Any]] = {}

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        token = (headers.get("authorization") or "").removeprefix("Bearer ")
        session = self.sessions.get(token)
        if path != "/session" or session is None:
            return json_answer(401, {"message": "unauthorized"})
        return json_answer(200, session)


@pytest.fixture
def endpoint() -> Iterator[OperatorEndpoint]:
    """A running operator endpoint."""
    with OperatorEndpoint() as server:
        yield server


@pytest.fixture
def tokens(signing_keys: dict[str, SigningKey]) -> TokenFactory:
    """Mori JWTs (the operator's key source: ES256 here)."""
    return TokenFactory(key=signing_keys["ES256"])


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def local(tokens: TokenFactory, **options: Any) -> MoriProvider:
    """Mori verified locally by the operator's key set."""
    return MoriProvider(keys=tokens.keyset(), algorithms=["ES256"], subject_claim="sub", **options)


def test_token_without_exp_lives_two_hours_after_iat(tokens: TokenFactory) -> None:
    """No exp: valid until iat + 2 h (+ leeway), and the principal says so."""
    auth = Authenticator([local(tokens)])
    issued = int(time.time()) - 3600
    principal = auth.authenticate(bearer(tokens.mint("42", exp=None, iat=issued)))
    assert principal is not None
    assert principal.expires_at == issued + 7200
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(tokens.mint("42", exp=None, iat=int(time.time()) - 7231)))
    assert caught.value.reason == "expired"
    with pytest.raises(InvalidToken) as missing:
        auth.authenticate(bearer(tokens.mint("42", exp=None, iat=None)))
    assert missing.value.reason == "missing_claim"


def test_token_with_exp_uses_it(tokens: TokenFactory) -> None:
    """A token's own exp wins over the default lifetime."""
    exp = int(time.time()) + 60
    principal = Authenticator([local(tokens)]).authenticate(bearer(tokens.mint("42", exp=exp)))
    assert principal is not None
    assert principal.expires_at == exp


def test_profile_attaches_contract_fields(tokens: TokenFactory) -> None:
    """The operator's mapping adds planType, usageLimit… to the principal's claims."""
    provider = local(tokens, profile=CONTRACTS.get)
    principal = Authenticator([provider]).authenticate(bearer(tokens.mint("42")))
    assert principal is not None
    assert (principal.claims["planType"], principal.claims["usageLimit"]) == ("pro", 10000)


def test_a_profile_never_replaces_what_the_token_says(tokens: TokenFactory) -> None:
    """A profile row that happens to hold sub, exp or cnf adds fields but replaces none of
    the verified claims: the subject, the expiry and any key binding stay the token's."""

    def row(subject: str) -> dict[str, Any]:
        return {"sub": "admin", "exp": 4102444800, "cnf": None, "planType": "pro"}

    auth = Authenticator([local(tokens, profile=row)])
    token = tokens.mint("42")
    principal = auth.authenticate(bearer(token))
    assert principal is not None
    assert principal.subject == "42"
    assert principal.claims["planType"] == "pro"
    assert principal.expires_at == unverified_exp(token)
    bound = tokens.mint("43", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(bound))  # still bound: a Bearer request cannot prove it
    assert caught.value.reason == "unverified_binding"


def test_operator_endpoint_for_opaque_tokens(endpoint: OperatorEndpoint) -> None:
    """An opaque token goes to the named endpoint; user.id (an int) becomes the subject."""
    now = int(time.time())
    endpoint.sessions["opaque-session-1"] = {"id": 42, "email": "ops@client.example", "iat": now}
    provider = MoriProvider(
        endpoint=endpoint.url + "/session", subject_claim="id", profile=CONTRACTS.get
    )
    auth = Authenticator([provider])
    principal = auth.authenticate(bearer("opaque-session-1"))
    assert principal is not None
    assert (principal.subject, principal.email, principal.verified_by) == (
        "42",
        "ops@client.example",
        "remote",
    )
    assert principal.expires_at == now + 7200
    assert principal.claims["planType"] == "pro"
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer("unknown-session"))
    assert caught.value.reason == "invalid_token"


def test_user_api_key(tokens: TokenFactory) -> None:
    """user.apiKey values are accepted from x-api-key, with their fields attached."""
    ring = APIKeyRing()
    ring.add(API_KEY, subject="42", name="integration", claims={"email": "ops@client.example"})
    auth = Authenticator([local(tokens, api_keys=ring, profile=CONTRACTS.get)])
    principal = auth.authenticate({"x-api-key": API_KEY})
    assert principal is not None
    assert (principal.subject, principal.credential) == ("42", "api_key")
    assert principal.claims["planType"] == "pro"
    with pytest.raises(InvalidToken, match="not recognised"):
        auth.authenticate({"x-api-key": "mori_not_a_known_key_000"})


def test_nothing_configured_is_refused() -> None:
    """No keys, no endpoint, no API keys: nothing could ever verify."""
    with pytest.raises(ConfigurationError):
        MoriProvider()


def test_end_to_end_asgi_and_wsgi(tokens: TokenFactory) -> None:
    """Both shells accept a Mori token and an API key."""
    ring = APIKeyRing()
    ring.add(API_KEY, subject="42")
    auth = Authenticator([local(tokens, api_keys=ring)])
    token = tokens.mint("42")
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        assert client.get("/whoami", headers=bearer(token)).json()["subject"] == "42"
        assert client.get("/whoami", headers={"x-api-key": API_KEY}).json()["subject"] == "42"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    wsgi = Client(AuthGateWSGIMiddleware(app, auth))
    assert wsgi.get("/", headers={"x-api-key": API_KEY}).data == b"42"
    assert wsgi.get("/", headers={"x-api-key": "mori_wrong_key_000000000"}).status_code == 401
