"""Provider presets against local fakes shaped as each provider documents its tokens and keys:
Cognito (access and ID tokens, the pool's JWKS), Firebase (ID tokens, Google's certificate
map), Auth0 (access tokens, the trailing-slash issuer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from authgate import (
    Authenticator,
    BadAudience,
    BadIssuer,
    ConfigurationError,
    InvalidToken,
    MissingClaim,
    NotYetValid,
)
from authgate.providers import auth0, cognito, firebase
from authgate.testing import FakeAuth0, FakeCognito, FakeFirebase, TokenFactory


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def pool() -> Iterator[FakeCognito]:
    with FakeCognito() as server:
        yield server


def cognito_for(pool: FakeCognito, **options: Any) -> Authenticator:
    provider = cognito(pool.region, pool.user_pool_id, pool.client_id, endpoint=pool.url, **options)
    return Authenticator([provider])


def test_cognito_access_tokens(pool: FakeCognito) -> None:
    """token_use access, the app client in client_id (no aud), groups as roles."""
    auth = cognito_for(pool)
    principal = auth.authenticate(bearer(pool.access_token("alice", groups=("admins",))))
    assert principal is not None
    assert principal.roles == {"admins"}
    assert "aws.cognito.signin.user.admin" in principal.scopes
    with pytest.raises(InvalidToken, match="names an audience"):  # an ID token carries aud
        auth.authenticate(bearer(pool.id_token("alice")))
    with pytest.raises(InvalidToken, match="not a Cognito access token") as caught:
        auth.authenticate(bearer(pool.access_token("alice", token_use="id")))
    assert caught.value.claim == "token_use"
    with pytest.raises(BadAudience, match="another app client"):
        auth.authenticate(bearer(pool.access_token("alice", client_id="other-client")))


def test_cognito_id_tokens(pool: FakeCognito) -> None:
    """token_use id, the app client in aud."""
    auth = cognito_for(pool, token_use="id")
    principal = auth.authenticate(bearer(pool.id_token("bob")))
    assert principal is not None
    assert principal.email == "bob@example.com"
    with pytest.raises(InvalidToken, match="no audience"):  # an access token carries none
        auth.authenticate(bearer(pool.access_token("bob")))
    with pytest.raises(InvalidToken, match="not a Cognito id token"):
        auth.authenticate(bearer(pool.id_token("bob", token_use="access")))
    with pytest.raises(BadAudience):
        auth.authenticate(bearer(pool.id_token("bob", aud="other-client")))


def test_cognito_tokens_of_another_pool_are_refused(pool: FakeCognito) -> None:
    with FakeCognito(user_pool_id="eu-west-1_OtherPool") as other, pytest.raises(BadIssuer):
        cognito_for(pool).authenticate(bearer(other.access_token("eve")))


@pytest.fixture
def project() -> Iterator[FakeFirebase]:
    with FakeFirebase() as server:
        yield server


def firebase_for(project: FakeFirebase, **options: Any) -> Authenticator:
    provider = firebase(project.project_id, certificates_url=project.certificates_url, **options)
    return Authenticator([provider])


def test_firebase_id_tokens_under_googles_certificate_map(project: FakeFirebase) -> None:
    auth = firebase_for(project)
    principal = auth.authenticate(bearer(project.id_token("uid-123")))
    assert principal is not None
    assert (principal.subject, principal.email) == ("uid-123", "uid-123@example.com")
    assert project.calls(FakeFirebase.PATH) == 1


@pytest.mark.parametrize(
    ("claims", "error", "reason"),
    [
        ({"sub": ""}, MissingClaim, "uid"),
        ({"auth_time": None}, MissingClaim, "auth_time"),
        ({"auth_time": "yesterday"}, MissingClaim, "auth_time"),
        ({"auth_time": int(time.time()) + 3600}, NotYetValid, "auth_time"),
        ({"aud": "another-project"}, BadAudience, "audience"),
        ({"iss": "https://securetoken.google.com/another-project"}, BadIssuer, "issuer"),
    ],
    ids=["empty-sub", "no-auth-time", "text-auth-time", "future-auth-time", "aud", "iss"],
)
def test_firebase_rules(
    claims: dict[str, Any], error: type[Exception], reason: str, project: FakeFirebase
) -> None:
    auth = firebase_for(project)
    with pytest.raises(error, match=reason):
        auth.authenticate(bearer(project.id_token("uid-123", **claims)))


def test_a_token_signed_by_another_key_is_refused(project: FakeFirebase) -> None:
    forged = TokenFactory("RS256", issuer=project.factory.issuer, audience=project.project_id)
    with pytest.raises(InvalidToken):
        firebase_for(project).authenticate(bearer(forged.mint("uid-1", auth_time=int(time.time()))))


@pytest.fixture
def tenant() -> Iterator[FakeAuth0]:
    with FakeAuth0() as server:
        yield server


def test_auth0_access_tokens(tenant: FakeAuth0) -> None:
    """The trailing-slash issuer, the API identifier, permissions as scopes."""
    auth = Authenticator([auth0(tenant.url, tenant.audience, role_claims=["https://ex/roles"])])
    roles: dict[str, Any] = {"https://ex/roles": ["ops"]}
    token = tenant.access_token("auth0|alice", permissions=("read:orders",), **roles)
    principal = auth.authenticate(bearer(token))
    assert principal is not None
    assert principal.subject == "auth0|alice"
    assert "read:orders" in principal.scopes
    assert principal.roles == {"ops"}
    with pytest.raises(BadAudience):
        auth.authenticate(bearer(tenant.access_token(aud="https://other.api")))
    without_slash = tenant.factory.mint("auth0|x", iss=tenant.url)
    with pytest.raises(BadIssuer):
        auth.authenticate(bearer(without_slash))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: cognito("eu-west-1", "pool/../x", "c"), "user_pool_id"),
        (lambda: cognito("eu-west-1", "p", []), "client_ids"),
        (lambda: cognito("eu-west-1", "p", "c", token_use="refresh"), "token_use"),  # type: ignore[arg-type]
        (lambda: firebase("my project"), "project_id"),
        (lambda: auth0("", "api"), "domain"),
        (lambda: auth0("example.auth0.com", []), "audience"),
    ],
)
def test_preset_mistakes_fail_at_construction(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_the_presets_point_at_the_providers_documented_urls() -> None:
    pool = cognito("eu-west-1", "eu-west-1_AbC", "client")
    assert pool.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
    assert repr(pool.verifier.key_source) == (
        "JWKSKeySource('https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
        "/.well-known/jwks.json')"
    )
    project = firebase("my-project")
    assert project.issuer == "https://securetoken.google.com/my-project"
    assert "securetoken@system.gserviceaccount.com" in repr(project.verifier.key_source)
    tenant = auth0("example.eu.auth0.com", "https://api.example.com")
    assert tenant.issuer == "https://example.eu.auth0.com/"
