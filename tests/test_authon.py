"""Authon end to end: remote verify, local RS256, banned users, pk_/sk_ keys, outages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from authgate import (
    Authenticator,
    AuthonProvider,
    BadAudience,
    ConfigurationError,
    Forbidden,
    InvalidToken,
    JWKSKeySource,
    KeyFetchPolicy,
    ProviderUnavailable,
    Upstream,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import FakeAuthon
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app
from .conftest import all_at_once


@pytest.fixture
def authon() -> Iterator[FakeAuthon]:
    """A running fake Authon with one user."""
    with FakeAuthon(project_id="proj_xyz") as fake:
        fake.add_user("usr_abc123", email="user@example.com", public_metadata={"plan": "pro"})
        yield fake


def remote_only(authon: FakeAuthon, **options: Any) -> AuthonProvider:
    """Authon with the secret key and no local keys."""
    return AuthonProvider(secret_key=authon.secret_key, base_url=authon.url, **options)


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def test_remote_verification_maps_the_user(authon: FakeAuthon) -> None:
    """GET /v1/auth/token/verify with sk_ + Bearer; the user object becomes the principal."""
    auth = Authenticator([remote_only(authon)])
    token = authon.sign_in("usr_abc123")
    principal = auth.authenticate(bearer(token))
    assert principal is not None
    assert (principal.subject, principal.tenant, principal.email, principal.name) == (
        "usr_abc123", "proj_xyz", "user@example.com", "Jane Doe",
    )  # fmt: skip
    assert principal.verified_by == "remote"
    assert principal.claims["emailVerified"] is True
    assert principal.claims["publicMetadata"] == {"plan": "pro"}
    assert auth.authenticate(bearer(token)) == principal
    assert auth.stats.hits == 1
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 1


def test_the_fake_refuses_requests_without_the_secret_key(authon: FakeAuthon) -> None:
    """The fake speaks Authon's contract: no sk_ key, no answer (so our client must send it)."""
    import httpx

    token = authon.sign_in("usr_abc123")
    bare = httpx.get(authon.url + FakeAuthon.VERIFY_PATH, headers=bearer(token))
    assert bare.status_code == 401
    assert bare.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Invalid or missing secret key",
    }


@pytest.mark.parametrize("where", ["remote", "local"])
def test_banned_user_is_403(where: str, authon: FakeAuthon) -> None:
    """A banned user's valid token is refused with 403, by the endpoint and by local claims."""
    authon.add_user("usr_banned", banned=True)
    keys = JWKSKeySource(authon.jwks_url) if where == "local" else None
    auth = Authenticator(
        [AuthonProvider(secret_key=authon.secret_key, base_url=authon.url, keys=keys)]
    )
    with pytest.raises(Forbidden, match="banned") as caught:
        auth.authenticate(bearer(authon.sign_in("usr_banned")))
    assert caught.value.status == 403
    assert authon.calls(FakeAuthon.VERIFY_PATH) == (1 if where == "remote" else 0)


@pytest.mark.parametrize("where", ["remote", "local"])
def test_project_id_admits_only_that_projects_users(where: str, authon: FakeAuthon) -> None:
    """With project_id, a user of another project of the account is refused (the endpoint's
    projectId remotely, the token's claim locally); the configured project's user passes."""
    keys = JWKSKeySource(authon.jwks_url) if where == "local" else None

    def auth(project: str) -> Authenticator:
        provider = AuthonProvider(
            secret_key=authon.secret_key, base_url=authon.url, keys=keys, project_id=project
        )
        return Authenticator([provider])

    token = authon.sign_in("usr_abc123")  # a user of proj_xyz
    with pytest.raises(BadAudience, match="another Authon project") as caught:
        auth("proj_other").authenticate(bearer(token))
    assert caught.value.claim == "projectId"
    assert auth("proj_xyz").authenticate(bearer(token)) is not None
    no_claim = authon.factory.mint("usr_abc123")  # no projectId claim at all
    if where == "local":
        with pytest.raises(BadAudience):
            auth("proj_xyz").authenticate(bearer(no_claim))


def test_local_verification_makes_no_remote_call(authon: FakeAuthon) -> None:
    """With a key source configured, tokens verify locally: zero calls to the verify endpoint."""
    provider = AuthonProvider(
        secret_key=authon.secret_key, base_url=authon.url, keys=JWKSKeySource(authon.jwks_url)
    )
    principal = Authenticator([provider]).authenticate(bearer(authon.sign_in("usr_abc123")))
    assert principal is not None
    assert (principal.subject, principal.tenant, principal.verified_by) == (
        "usr_abc123",
        "proj_xyz",
        "local",
    )
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 0


def test_unknown_kid_falls_back_to_the_endpoint(authon: FakeAuthon) -> None:
    """A kid still unknown after the refresh (inside the cooldown) goes to the verify endpoint."""
    keys = JWKSKeySource(authon.jwks_url, policy=KeyFetchPolicy(cooldown=300))
    auth = Authenticator(
        [AuthonProvider(secret_key=authon.secret_key, base_url=authon.url, keys=keys)]
    )
    assert auth.authenticate(bearer(authon.sign_in("usr_abc123"))).verified_by == "local"  # type: ignore[union-attr]
    authon.factory.rotate()
    principal = auth.authenticate(bearer(authon.sign_in("usr_abc123")))
    assert principal is not None
    assert principal.verified_by == "remote"
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 1


@pytest.mark.parametrize("damage", ["expired", "bad-signature"])
def test_definitive_local_failures_never_call_out(damage: str, authon: FakeAuthon) -> None:
    """An expired or forged token fails locally, finally: no remote second chance."""
    provider = AuthonProvider(
        secret_key=authon.secret_key, base_url=authon.url, keys=JWKSKeySource(authon.jwks_url)
    )
    auth = Authenticator([provider])
    if damage == "expired":
        token = authon.sign_in("usr_abc123", ttl=-120)
    else:
        head, payload, sig = authon.sign_in("usr_abc123").split(".")
        token = f"{head}.{payload}.{sig[:-4]}AAAA"
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(token))
    assert caught.value.reason == ("expired" if damage == "expired" else "bad_signature")
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 0


def test_rejected_and_opaque_tokens_remote(authon: FakeAuthon) -> None:
    """The endpoint's 401 is our 401; an opaque rt_ refresh token is not an access token."""
    auth = Authenticator([remote_only(authon)])
    for token in (authon.sign_in("usr_abc123", ttl=-1), "rt_8f4a2b1c"):
        with pytest.raises(InvalidToken, match="rejected"):
            auth.authenticate(bearer(token))


def test_api_keys_classified_and_publishable_limited(authon: FakeAuthon) -> None:
    """sk_/pk_ keys are recognised, classified by kind and environment; pk_ never gets secret scope."""
    provider = remote_only(authon)
    provider.add_api_key("sk_live_0123456789abcdef0123", subject="backend", scopes=["users:read"])
    provider.add_api_key("pk_test_0123456789abcdef0123", subject="web", scopes=["users:read"])
    auth = Authenticator([provider])
    secret = auth.authenticate({"x-api-key": "sk_live_0123456789abcdef0123"})
    public = auth.authenticate(bearer("pk_test_0123456789abcdef0123"))
    assert secret is not None
    assert public is not None
    assert (secret.claims["key_kind"], secret.claims["environment"]) == ("secret", "live")
    assert (public.claims["key_kind"], public.claims["environment"]) == ("publishable", "test")
    assert "authon:secret" in secret.scopes
    assert "authon:secret" not in public.scopes
    with pytest.raises(InvalidToken, match="not recognised"):
        auth.authenticate({"x-api-key": "sk_live_unknown_key_0000000"})
    with pytest.raises(ConfigurationError, match="publishable"):
        provider.add_api_key(
            "pk_live_0123456789abcdef0123", subject="web", scopes=["authon:secret"]
        )
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 0


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"secret_key": "pk_live_x"}, "secret key"),
        ({}, "keys for local verification or a secret_key"),
        ({"secret_key": "sk_live_x", "base_url": "http://api.authon.dev"}, "https"),
        ({"secret_key": "sk_live_x", "project_id": ""}, "project_id"),
    ],
    ids=["publishable-as-secret", "nothing", "plain-http", "empty-project"],
)
def test_bad_configuration(options: dict[str, Any], fragment: str) -> None:
    """A publishable key as the secret, nothing to verify with, or plain http fail at start-up."""
    with pytest.raises(ConfigurationError, match=fragment):
        AuthonProvider(**options)


def test_100_concurrent_requests_with_one_new_token_make_one_call(authon: FakeAuthon) -> None:
    """Single-flight against the real fake server."""
    auth = Authenticator([remote_only(authon)])
    token = authon.sign_in("usr_abc123")
    subjects = all_at_once(lambda: auth.authenticate(bearer(token)).subject)  # type: ignore[union-attr]
    assert set(subjects) == {"usr_abc123"}
    assert authon.calls(FakeAuthon.VERIFY_PATH) == 1


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [("ratelimit", "9"), ("error", None), ("garbage", None), ("down", None)],
)
def test_upstream_trouble_through_asgi_is_503(
    fault: Any, retry_after: str | None, authon: FakeAuthon
) -> None:
    """429 keeps the upstream's Retry-After; 500, garbage and 503 are 503s; never a 401."""
    authon.fault = fault
    authon.retry_after = retry_after or "2"
    app = AuthGateMiddleware(starlette_app(), Authenticator([remote_only(authon)]))
    with TestClient(app) as client:
        response = client.get("/whoami", headers=bearer(authon.sign_in("usr_abc123")))
    assert response.status_code == 503
    assert response.json()["statusCode"] == 503
    if retry_after:
        assert response.headers["retry-after"] == retry_after


def test_timeout_is_503(authon: FakeAuthon) -> None:
    """A silent endpoint is a 503 after the timeout."""
    from authgate import Upstream

    authon.fault = "hang"
    with pytest.raises(ProviderUnavailable):
        Authenticator([remote_only(authon, upstream=Upstream(timeout=0.3))]).authenticate(
            bearer(authon.sign_in("usr_abc123"))
        )


def test_end_to_end_asgi_and_wsgi(authon: FakeAuthon) -> None:
    """The same provider behind both shells: 200 with the principal, 403 banned, 401 bad."""
    authon.add_user("usr_banned", banned=True)
    auth = Authenticator([remote_only(authon)])
    good, banned = authon.sign_in("usr_abc123"), authon.sign_in("usr_banned")
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        assert client.get("/whoami", headers=bearer(good)).json()["subject"] == "usr_abc123"
        forbidden = client.get("/whoami", headers=bearer(banned))
        assert forbidden.status_code == 403
        assert forbidden.json() == {
            "statusCode": 403,
            "error": "Forbidden",
            "message": "this user is banned",
        }
        assert client.get("/whoami", headers=bearer("not-a-token")).status_code == 401

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    wsgi = Client(AuthGateWSGIMiddleware(app, auth))
    assert wsgi.get("/", headers=bearer(good)).data == b"usr_abc123"
    assert wsgi.get("/", headers=bearer(banned)).status_code == 403


def test_authon_403_is_our_refused_secret_key_not_the_callers_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Authon's 403 means our secret key lacks the right: a 503, and its own words reach our log only."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "sk_live_0123456789abcdef"
        assert request.headers["authorization"].startswith("Bearer ")
        body = {"statusCode": 403, "error": "Forbidden", "message": "key lacks token:verify"}
        return httpx.Response(403, json=body)

    provider = AuthonProvider(
        secret_key="sk_live_0123456789abcdef",
        upstream=Upstream(transport=httpx.MockTransport(answer)),
    )
    with pytest.raises(ProviderUnavailable) as caught:
        Authenticator([provider]).authenticate(bearer("opaque-access-token"))
    assert caught.value.status == 503
    assert "lacks token:verify" not in caught.value.message
    assert "Forbidden: key lacks token:verify" in caplog.text
    assert "opaque-access-token" not in caplog.text
