"""Back Office end to end: RS256 with iss, the document's corrupted example, revocation."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from authgate import (
    Authenticator,
    BackOfficeProvider,
    ConfigurationError,
    InvalidToken,
    VeryChatProvider,
)
from authgate._config import MAX_LEEWAY
from authgate.asgi import AuthGateMiddleware
from authgate.testing import SigningKey, TokenFactory
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app
from .conftest import Clock

ISSUER = "https://ap.vendor.com"
# The access token printed in Back Office's own document: its header segment starts "wy".
_DOC = Path(__file__).resolve().parent / "data" / "backoffice_api.txt"
DOC_TOKEN = next(
    match.group(0)
    for match in re.finditer(r"wy[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", _DOC.read_text())
)


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock."""
    return Clock(float(int(time.time())))


@pytest.fixture
def backoffice(rs256: SigningKey, clock: Clock) -> TokenFactory:
    """Back Office's token issuer: RS256, 10-hour tokens, iss https://ap.vendor.com."""
    return TokenFactory(key=rs256, issuer=ISSUER, ttl=36000, clock=clock)


@pytest.fixture
def auth(backoffice: TokenFactory, clock: Clock) -> Authenticator:
    """Only the Back Office provider."""
    provider = BackOfficeProvider(ISSUER, backoffice.keyset(), clock=clock)
    return Authenticator([provider], clock=clock)


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def test_valid_token(auth: Authenticator, backoffice: TokenFactory) -> None:
    """sub '1', iat, exp, iss map to the principal."""
    principal = auth.authenticate(bearer(backoffice.mint("1", headers={"typ": "JWT", "kid": None})))
    assert principal is not None
    assert (principal.subject, principal.issuer, principal.provider) == ("1", ISSUER, "backoffice")


def test_a_deployments_refresh_tokens_are_refused_with_a_claims_hook(
    backoffice: TokenFactory, clock: Clock
) -> None:
    """The document gives refresh tokens an access token's very claims: by default both
    verify (nothing documented tells them apart). A deployment that marks them refuses them
    with claims_hook."""
    refresh = backoffice.mint("1", token_use="refresh")
    plain = Authenticator(
        [BackOfficeProvider(ISSUER, backoffice.keyset(), clock=clock)], clock=clock
    )
    assert plain.authenticate(bearer(refresh)) is not None

    def access_only(claims: dict[str, Any]) -> dict[str, Any]:
        if claims.get("token_use") == "refresh":
            raise InvalidToken("a refresh token is no access token", claim="token_use")
        return claims

    provider = BackOfficeProvider(ISSUER, backoffice.keyset(), clock=clock, claims_hook=access_only)
    auth = Authenticator([provider], clock=clock)
    with pytest.raises(InvalidToken, match="no access token"):
        auth.authenticate(bearer(refresh))
    assert auth.authenticate(bearer(backoffice.mint("1"))) is not None


@pytest.mark.parametrize("missing", ["iat", "sub", "iss"])
def test_required_claims(missing: str, auth: Authenticator, backoffice: TokenFactory) -> None:
    """Each of sub, iat, iss is required."""
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(backoffice.mint("1", **{missing: None})))
    assert caught.value.reason == ("bad_issuer" if missing == "iss" else "missing_claim")


def test_the_documents_example_token_is_malformed_not_a_crash(
    auth: Authenticator, backoffice: TokenFactory, clock: Clock
) -> None:
    """The 'wy…' token of Back Office's document is 401 malformed, alone and beside other providers."""
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(DOC_TOKEN))
    assert caught.value.reason == "malformed"
    mixed = Authenticator(
        [
            BackOfficeProvider(ISSUER, backoffice.keyset(), clock=clock),
            VeryChatProvider("p", secret="s" * 32),
        ]
    )
    with pytest.raises(InvalidToken) as again:
        mixed.authenticate(bearer(DOC_TOKEN))
    assert again.value.reason == "malformed"
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        response = client.get("/whoami", headers=bearer(DOC_TOKEN))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert DOC_TOKEN[:20] not in response.text


def test_revoked_token_is_refused_even_when_cached(
    auth: Authenticator, backoffice: TokenFactory
) -> None:
    """Sign-out: revoke(token) purges the cache; the next request is 401 revoked."""
    token = backoffice.mint("1")
    auth.authenticate(bearer(token))
    auth.authenticate(bearer(token))
    assert auth.stats.hits == 1
    auth.revoke(token)
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(token))
    assert caught.value.reason == "revoked"
    assert auth.authenticate(bearer(backoffice.mint("1"))) is not None  # a new sign-in works


@pytest.mark.parametrize("target", ["token", "jti", "subject"])
def test_a_sign_out_landing_between_verification_and_admission_is_not_cached(
    target: str, auth: Authenticator, backoffice: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation that lands after the verification's denylist check and before the cache
    admits the token is seen by the re-check under the lock: the request is refused and the
    token never reaches the cache (without the re-check it would be served from it)."""
    token = backoffice.mint("1", jti="session-7")
    denylist = type(auth.denylist)
    checked = denylist.is_revoked
    landed: list[bool] = []

    def racing(self: Any, value: str, principal: Any) -> bool:
        revoked = checked(self, value, principal)
        if not landed:  # the sign-out lands right after the first check
            landed.append(True)
            revoke = {"token": {"token": token}, "jti": {"jti": "session-7"}}
            auth.revoke(**revoke.get(target, {"subject": "1", "issued_before": 2e9}))
        return revoked

    monkeypatch.setattr(denylist, "is_revoked", racing)
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(token))
    assert caught.value.reason == "revoked"
    assert auth.cache is not None
    assert len(auth.cache) == 0
    monkeypatch.undo()
    with pytest.raises(InvalidToken) as again:
        auth.authenticate(bearer(token))
    assert again.value.reason == "revoked"
    assert auth.stats.hits == 0


def test_revoke_by_jti(auth: Authenticator, backoffice: TokenFactory) -> None:
    """Every token carrying a revoked jti is refused, cached or not."""
    token = backoffice.mint("1", jti="session-42")
    auth.authenticate(bearer(token))
    auth.revoke(jti="session-42")
    with pytest.raises(InvalidToken, match="revoked"):
        auth.authenticate(bearer(token))


def test_revoke_by_subject_and_issue_time(
    auth: Authenticator, backoffice: TokenFactory, clock: Clock
) -> None:
    """Tokens of the subject issued before the cut-off are refused; newer ones pass."""
    old = backoffice.mint("1")
    other = backoffice.mint("2")
    auth.authenticate(bearer(old))
    clock.now += 10
    auth.revoke(subject="1", issued_before=clock.now)
    with pytest.raises(InvalidToken, match="revoked"):
        auth.authenticate(bearer(old))
    assert auth.authenticate(bearer(other)).subject == "2"  # type: ignore[union-attr]
    clock.now += 1
    assert auth.authenticate(bearer(backoffice.mint("1"))).subject == "1"  # type: ignore[union-attr]


def test_denylist_forgets_entries_after_exp(
    auth: Authenticator, backoffice: TokenFactory, clock: Clock
) -> None:
    """A revoked token's entries (its signing input and its jti) live until its exp and the
    longest leeway (MAX_LEEWAY) after, then are forgotten by the next amortised prune; the list never holds more than twice its live
    entries plus 64."""
    token = backoffice.mint("1", exp=int(clock.now) + 60)
    auth.revoke(token)
    assert len(auth.denylist) == 2  # the signing input and the jti
    clock.now += 60 + MAX_LEEWAY + 1
    for i in range(200):
        auth.revoke(jti=f"later-{i}", expires_at=clock.now + 3600)
        assert len(auth.denylist) <= 2 * (i + 1) + 64
    assert len(auth.denylist) < 202  # the expired two were pruned on the way


def test_revoke_needs_something() -> None:
    """revoke() without a token, jti or subject is a usage error (TypeError), not a
    configuration error."""
    auth = Authenticator([VeryChatProvider("p", secret="s" * 32)])
    with pytest.raises(TypeError, match="needs a token"):
        auth.revoke()


def test_end_to_end_asgi_and_wsgi(auth: Authenticator, backoffice: TokenFactory) -> None:
    """Both shells: 200, then 401 revoked after sign-out."""
    token = backoffice.mint("1")
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        assert client.get("/whoami", headers=bearer(token)).json()["subject"] == "1"

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("content-type", "text/plain")])
            return [environ[ENVIRON_KEY].subject.encode()]

        wsgi = Client(AuthGateWSGIMiddleware(app, auth))
        assert wsgi.get("/", headers=bearer(token)).data == b"1"
        auth.revoke(token)
        revoked = client.get("/whoami", headers=bearer(token))
        assert revoked.status_code == 401
        assert revoked.json()["message"] == "the token has been revoked"
        assert wsgi.get("/", headers=bearer(token)).status_code == 401


def test_bad_configuration(backoffice: TokenFactory) -> None:
    """An empty issuer fails at start-up."""
    with pytest.raises(ConfigurationError):
        BackOfficeProvider("", backoffice.keyset())
