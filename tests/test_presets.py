"""Provider presets against local fakes shaped as each provider documents its tokens and keys:
Cognito (access and ID tokens, the pool's JWKS), Firebase (ID tokens, Google's certificate
map), Auth0 (access tokens, the trailing-slash issuer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from authgate import (
    Authenticator,
    AuthGateError,
    BadAudience,
    BadIssuer,
    ConfigurationError,
    ExpiredToken,
    InvalidToken,
    MissingClaim,
    NotYetValid,
    Provider,
    Upstream,
)
from authgate.providers import (
    auth0,
    clerk,
    cognito,
    entra,
    firebase,
    github_actions,
    google,
    keycloak,
    kubernetes,
    okta,
    supabase,
)
from authgate.testing import (
    FakeAuth0,
    FakeCognito,
    FakeFirebase,
    FakeGoogle,
    FakeOIDC,
    TokenFactory,
)


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


def test_firebase_anonymous_accounts_are_refused_unless_accepted(project: FakeFirebase) -> None:
    """Any client can create an anonymous Firebase account where the project allows it: its
    ID token (``sign_in_provider: anonymous``) is refused by default, accepted with
    ``accept_anonymous=True``."""
    anonymous = project.id_token(
        "anon-uid", email=None, email_verified=None,
        firebase={"identities": {}, "sign_in_provider": "anonymous"},
    )  # fmt: skip
    with pytest.raises(InvalidToken, match="anonymous") as caught:
        firebase_for(project).authenticate(bearer(anonymous))
    assert caught.value.claim == "firebase"
    assert firebase_for(project, accept_anonymous=True).authenticate(bearer(anonymous))
    with pytest.raises(ConfigurationError, match="accept_anonymous"):
        firebase("p", accept_anonymous="no")  # type: ignore[arg-type]


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


def test_keycloak_realm_tokens_with_realm_and_client_roles() -> None:
    with FakeOIDC(
        issuer_path="/realms/demo", jwks_path="/realms/demo/protocol/openid-connect/certs"
    ) as server:
        provider = keycloak(server.url, "demo", audience="orders-api", client_id="orders-api")
        auth = Authenticator([provider])
        token = server.mint(
            "f6b3c2e1",
            aud=["orders-api", "account"],
            azp="web-app",
            typ="Bearer",
            preferred_username="alice",
            realm_access={"roles": ["offline_access", "user"]},
            resource_access={"orders-api": {"roles": ["orders-admin"]}},
            scope="openid profile",
        )
        principal = auth.authenticate(bearer(token))
        assert principal is not None
        assert principal.roles == {"offline_access", "user", "orders-admin"}
        assert principal.name == "alice"
        with pytest.raises(BadAudience):
            auth.authenticate(bearer(server.mint("x", aud="account")))
        # the realm signs ID and logout tokens with the same key, for the same audience
        for kind in ("ID", "Logout"):
            other = server.mint("f6b3c2e1", aud="orders-api", azp="orders-api", typ=kind)
            with pytest.raises(InvalidToken) as caught:
                auth.authenticate(bearer(other))
            assert (caught.value.message, caught.value.claim) == (
                "the token is not a Keycloak access token",
                "typ",
            )
        lightweight = server.mint("f6b3c2e1", aud="orders-api")  # no typ: still an access token
        assert auth.authenticate(bearer(lightweight)) is not None


def test_okta_custom_authorization_server() -> None:
    with FakeOIDC(issuer_path="/oauth2/default", jwks_path="/oauth2/default/v1/keys") as server:
        auth = Authenticator([okta(server.url, client_ids=["0oa1client"])])
        token = server.mint(
            "00u1alice", aud="api://default", cid="0oa1client", uid="00u1alice", ver=1,
            scp=["orders:read", "openid"],
        )  # fmt: skip
        principal = auth.authenticate(bearer(token))
        assert principal is not None
        assert "orders:read" in principal.scopes
        with pytest.raises(BadAudience, match="another client"):
            auth.authenticate(bearer(server.mint("x", aud="api://default", cid="0oa2other")))


def test_github_actions_claim_constraints() -> None:
    with FakeOIDC(jwks_path="/.well-known/jwks") as server:
        provider = github_actions(
            "https://github.com/octo-org",
            repository="octo-org/octo-repo",
            ref="refs/heads/main",
            issuer=server.url,
        )
        auth = Authenticator([provider])
        claims = {
            "aud": "https://github.com/octo-org",
            "repository": "octo-org/octo-repo",
            "repository_owner": "octo-org",
            "ref": "refs/heads/main",
            "workflow": "deploy",
            "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
            "runner_environment": "github-hosted",
        }
        subject = "repo:octo-org/octo-repo:ref:refs/heads/main"
        principal = auth.authenticate(bearer(server.mint(subject, **claims)))
        assert principal is not None
        assert principal.subject == subject
        for claim, value in (("repository", "octo-org/fork"), ("ref", "refs/heads/dev")):
            with pytest.raises(InvalidToken, match=f"workflow's {claim}") as caught:
                auth.authenticate(bearer(server.mint(subject, **{**claims, claim: value})))
            assert caught.value.claim == claim
        # ids: the immutable names of an owner and a repository (a deleted org's name can be
        # registered again by anyone)
        by_id = Authenticator(
            [github_actions("https://github.com/octo-org", repository_owner_id="65",
                            repository_id="74", issuer=server.url)]
        )  # fmt: skip
        ids = {**claims, "repository_owner_id": "65", "repository_id": "74"}
        assert by_id.authenticate(bearer(server.mint(subject, **ids))) is not None
        squatter = {**ids, "repository_owner_id": "9001"}
        with pytest.raises(InvalidToken, match="workflow's repository_owner_id"):
            by_id.authenticate(bearer(server.mint(subject, **squatter)))


def test_github_actions_without_an_owner_constraint_is_refused() -> None:
    """Any workflow on GitHub can ask for a token with any audience: the audience, a ref or
    an environment alone would admit every repository's workflows."""
    partials: list[dict[str, Any]] = [{}, {"ref": "refs/heads/main"}, {"environment": "prod"}]
    for partial in partials:
        with pytest.raises(ConfigurationError, match="any workflow on GitHub"):
            github_actions("https://github.com/octo-org", **partial)
    for owner in ("repository", "repository_owner", "repository_id", "repository_owner_id"):
        constraint: dict[str, Any] = {owner: "x"}
        assert github_actions("https://github.com/octo-org", **constraint).name


def test_supabase_asymmetric_keys() -> None:
    with FakeOIDC(
        issuer_path="/auth/v1", jwks_path="/auth/v1/.well-known/jwks.json", alg="ES256"
    ) as server:
        auth = Authenticator([supabase(server.url)])
        token = server.mint(
            "8d2f0a6e-0000-4000-8000-000000000001", aud="authenticated", role="authenticated",
            email="ada@example.com", session_id="s-1", is_anonymous=False,
        )  # fmt: skip
        principal = auth.authenticate(bearer(token))
        assert principal is not None
        assert principal.roles == {"authenticated"}
        with pytest.raises(BadAudience):
            auth.authenticate(bearer(server.mint("x", aud="anon")))


def test_supabase_anonymous_sign_ins_are_refused_unless_accepted() -> None:
    """Anyone may sign in anonymously where a project allows it, and gets the same
    ``authenticated`` role and audience: such a token (``is_anonymous`` true, or anything but
    false) is refused by default, one without the claim (from before anonymous sign-ins) is
    not; ``accept_anonymous=True`` lets it in."""
    with FakeOIDC(
        issuer_path="/auth/v1", jwks_path="/auth/v1/.well-known/jwks.json", alg="ES256"
    ) as server:
        claims = {"aud": "authenticated", "role": "authenticated", "session_id": "s-1"}
        strict = Authenticator([supabase(server.url)])
        for anonymous in (True, "true", 1):
            token = server.mint("8d2f0a6e-anon", is_anonymous=anonymous, **claims)
            with pytest.raises(InvalidToken, match="anonymously") as caught:
                strict.authenticate(bearer(token))
            assert caught.value.claim == "is_anonymous"
        signed_in = server.mint("8d2f0a6e-ada", is_anonymous=False, **claims)
        assert strict.authenticate(bearer(signed_in)) is not None
        assert strict.authenticate(bearer(server.mint("8d2f0a6e-old", **claims))) is not None
        lenient = Authenticator([supabase(server.url, accept_anonymous=True)])
        anonymous_token = server.mint("8d2f0a6e-anon", is_anonymous=True, **claims)
        principal = lenient.authenticate(bearer(anonymous_token))
        assert principal is not None
        assert principal.claims["is_anonymous"] is True
        with pytest.raises(ConfigurationError, match="accept_anonymous"):
            supabase(server.url, accept_anonymous="no")  # type: ignore[arg-type]


def test_clerk_authorized_parties() -> None:
    with FakeOIDC() as server:
        auth = Authenticator([clerk(server.url, ["https://app.example.com"])])
        ok = server.mint("user_2abc", azp="https://app.example.com", sid="sess_1")
        assert auth.authenticate(bearer(ok)) is not None
        with pytest.raises(BadAudience, match="another origin"):
            auth.authenticate(bearer(server.mint("user_2abc", azp="https://evil.example")))
        with pytest.raises(BadAudience, match="another origin"):
            auth.authenticate(bearer(server.mint("user_2abc", sid="sess_1")))  # no azp


def test_clerk_pending_sessions_are_signed_out_unless_accepted() -> None:
    """A v2 session token with ``sts: pending`` (tasks to complete) is refused, as Clerk's
    SDKs treat it by default; ``accept_pending=True`` lets it in; an active one always."""
    with FakeOIDC() as server:
        claims = {"azp": "https://app.example.com", "sid": "sess_1", "v": 2}
        pending = server.mint("user_2abc", sts="pending", **claims)
        strict = Authenticator([clerk(server.url, ["https://app.example.com"])])
        with pytest.raises(InvalidToken, match="pending") as caught:
            strict.authenticate(bearer(pending))
        assert caught.value.claim == "sts"
        assert strict.authenticate(bearer(server.mint("user_2abc", sts="active", **claims)))
        lenient = Authenticator(
            [clerk(server.url, ["https://app.example.com"], accept_pending=True)]
        )
        assert lenient.authenticate(bearer(pending)) is not None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: keycloak("keycloak.example.com", "demo"), "base_url"),
        (lambda: keycloak("https://k.example", "a/b"), "realm"),
        (lambda: github_actions("aud", repository=""), "repository"),
        (lambda: clerk("https://clerk.example.com", []), "authorized_parties"),
        (
            lambda: clerk("https://clerk.example.com", ["https://a"], accept_pending="no"),  # type: ignore[arg-type]
            "accept_pending",
        ),
        (lambda: okta("example.okta.com", authorization_server="a/b"), "authorization_server"),
    ],
)
def test_more_preset_mistakes_fail_at_construction(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_entra_v2_single_tenant() -> None:
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    with FakeOIDC(
        issuer_path=f"/{tenant}/v2.0", jwks_path=f"/{tenant}/discovery/v2.0/keys"
    ) as server:
        provider = entra("api://orders", tenant_id=tenant, authority=server.url)
        auth = Authenticator([provider])
        claims = {"aud": "api://orders", "tid": tenant, "ver": "2.0", "roles": ["Orders.Admin"],
                  "scp": "Orders.Read", "oid": "o-1", "azp": "client-1"}  # fmt: skip
        principal = auth.authenticate(bearer(server.mint("s-1", **claims)))
        assert principal is not None
        assert principal.roles == {"Orders.Admin"}
        assert "Orders.Read" in principal.scopes
        assert principal.tenant == tenant
        with pytest.raises(BadAudience):
            auth.authenticate(bearer(server.mint("s-1", **{**claims, "aud": "api://other"})))


def test_entra_v1_tokens_under_the_sts_issuer() -> None:
    tenant = "contoso-tid"
    with FakeOIDC(issuer_path=f"/sts/{tenant}/", jwks_path=f"/{tenant}/discovery/keys") as server:
        auth = Authenticator(
            [entra("api://orders", tenant_id=tenant, version=1, authority=server.url)]
        )
        token = server.mint("s-1", aud="api://orders", ver="1.0", appid="client-1", tid=tenant)
        principal = auth.authenticate(bearer(token))
        assert principal is not None


def test_entra_multi_tenant() -> None:
    from authgate.testing import FakeTenants

    with FakeTenants(["contoso", "fabrikam", "outsider"]) as idp:
        provider = entra("api://orders", tenants=["contoso", "fabrikam"], authority=idp.url)
        auth = Authenticator([provider])
        for tenant in ("contoso", "fabrikam"):
            token = idp.mint(tenant, "u", aud="api://orders")
            assert auth.authenticate(bearer(token)).tenant == tenant  # type: ignore[union-attr]
        with pytest.raises(BadIssuer):
            auth.authenticate(bearer(idp.mint("outsider", "u", aud="api://orders")))


def test_kubernetes_service_account_tokens() -> None:
    with FakeOIDC(jwks_path="/openid/v1/jwks") as cluster:
        auth = Authenticator([kubernetes(cluster.url, "vault", namespaces=["ci"])])
        details = {"namespace": "ci", "serviceaccount": {"name": "builder", "uid": "u-1"}}
        token = cluster.mint(
            "system:serviceaccount:ci:builder", aud=["vault"], **{"kubernetes.io": details}
        )
        principal = auth.authenticate(bearer(token))
        assert principal is not None
        other = {**details, "namespace": "default"}
        with pytest.raises(InvalidToken, match="namespace"):
            auth.authenticate(bearer(cluster.mint("x", aud=["vault"], **{"kubernetes.io": other})))
        with pytest.raises(MissingClaim):
            auth.authenticate(bearer(cluster.mint("x", aud=["vault"], exp=None)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: entra("api://x"), "tenant_id"),
        (lambda: entra("api://x", tenant_id="t", tenants=["t"]), "tenant_id"),
        (lambda: entra("api://x", tenant_id="t", version=3), "version"),  # type: ignore[arg-type]
        (lambda: kubernetes("https://k8s.example", []), "audience"),
    ],
)
def test_entra_and_kubernetes_mistakes_fail_at_construction(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


@pytest.fixture
def google_keys() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


def test_google_id_tokens_in_both_issuer_spellings(google_keys: FakeGoogle) -> None:
    """Google signs ID tokens with ``iss`` https://accounts.google.com or accounts.google.com:
    both are routed to the preset and accepted; the client id is the audience."""
    auth = Authenticator([google(google_keys.client_id, keys_url=google_keys.jwks_url)])
    for spelling in ("https://accounts.google.com", "accounts.google.com"):
        principal = auth.authenticate(bearer(google_keys.id_token("1101", iss=spelling)))
        assert principal is not None
        assert (principal.subject, principal.issuer, principal.email) == (
            "1101",
            spelling,
            "alice@example.com",
        )
    assert google_keys.calls(FakeGoogle.JWKS_PATH) == 1


@pytest.mark.parametrize(
    ("claims", "error", "reason"),
    [
        ({"aud": "another-client.apps.googleusercontent.com"}, BadAudience, "audience"),
        ({"iss": "https://accounts.google.com/"}, BadIssuer, "issuer"),
        ({"iss": "https://evil.example"}, BadIssuer, "issuer"),
        ({"hd": "other.example"}, BadAudience, "Workspace domain"),
        ({"hd": None}, BadAudience, "Workspace domain"),
    ],
    ids=["aud", "iss-trailing-slash", "iss-foreign", "hd-other", "hd-missing"],
)
def test_google_rules(
    claims: dict[str, Any], error: type[Exception], reason: str, google_keys: FakeGoogle
) -> None:
    provider = google(google_keys.client_id, hosted_domain="example.com",
                      keys_url=google_keys.jwks_url)  # fmt: skip
    auth = Authenticator([provider])
    token = google_keys.id_token("1101", hosted_domain="example.com", **claims)
    with pytest.raises(error, match=reason):
        auth.authenticate(bearer(token))
    assert auth.authenticate(bearer(google_keys.id_token("1101", hosted_domain="example.com")))


def test_google_service_callers_named_by_email(google_keys: FakeGoogle) -> None:
    """A service account of any project can ask Google for an ID token with any audience:
    with ``emails``, only the named callers' tokens, their email verified, are accepted."""
    caller = "billing@our-project.iam.gserviceaccount.com"
    provider = google("https://api.example.com", emails=[caller], keys_url=google_keys.jwks_url)
    auth = Authenticator([provider])
    service = {"aud": "https://api.example.com", "email": caller, "azp": "1099"}
    assert auth.authenticate(bearer(google_keys.id_token("1099", **service))) is not None
    others: list[dict[str, Any]] = [
        {"email": "anyone@their-project.iam.gserviceaccount.com"},
        {"email_verified": False},
        {"email": None},
    ]
    for other in others:
        with pytest.raises(BadAudience, match="accepted ones") as caught:
            auth.authenticate(bearer(google_keys.id_token("1099", **{**service, **other})))
        assert caught.value.claim == "email"


def test_google_preset_mistakes_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="client_id"):
        google([])
    with pytest.raises(ConfigurationError, match="hosted_domain"):
        google("id.apps.googleusercontent.com", hosted_domain="")
    with pytest.raises(ConfigurationError, match="emails"):
        google("id.apps.googleusercontent.com", emails=[])


def test_google_and_firebase_keys_side_by_side(google_keys: FakeGoogle) -> None:
    """The same keys as a certificate map (Google's /oauth2/v1/certs) verify the same token."""
    from authgate import JWTVerifier
    from authgate.keysources import CertificateKeySource

    verifier = JWTVerifier(
        CertificateKeySource(google_keys.url + FakeGoogle.CERTIFICATES_PATH),
        algorithms=["RS256"], issuer="https://accounts.google.com",
        audience=google_keys.client_id,
    )  # fmt: skip
    assert verifier.verify(google_keys.id_token("1101"))["sub"] == "1101"


def test_presets_judge_time_by_their_upstreams_clock(
    project: FakeFirebase, pool: FakeCognito, google_keys: FakeGoogle
) -> None:
    """One clock per provider: a preset's verifier reads its ``Upstream``'s clock, as its key
    source does. Two hours on, a fresh token is expired; two hours back, Firebase's
    ``auth_time`` of a minute ago is in the future."""
    ahead = Upstream(clock=lambda: time.time() + 7200)
    behind = Upstream(clock=lambda: time.time() - 7200)
    with pytest.raises(ExpiredToken):
        firebase_for(project, upstream=ahead).authenticate(bearer(project.id_token()))
    with pytest.raises(NotYetValid) as raised:
        firebase_for(project, upstream=behind).authenticate(
            bearer(project.id_token(iat=int(time.time()) - 7300))
        )
    assert raised.value.claim == "auth_time"
    with pytest.raises(ExpiredToken):
        cognito_for(pool, upstream=ahead).authenticate(bearer(pool.access_token("bob")))
    provider = google(google_keys.client_id, keys_url=google_keys.jwks_url, upstream=ahead)
    with pytest.raises(ExpiredToken):
        Authenticator([provider]).authenticate(bearer(google_keys.id_token("1101")))


REALM = {"issuer_path": "/realms/demo", "jwks_path": "/realms/demo/protocol/openid-connect/certs"}


@pytest.mark.parametrize(
    ("fake", "build", "claims"),
    [
        ({}, lambda idp: okta(idp.issuer, client_ids=["0oa1client"]),
         {"aud": "api://default", "cid": ["0oa1client"]}),
        ({}, lambda idp: clerk(idp.issuer, ["https://app.example.com"]),
         {"azp": ["https://app.example.com"]}),
        ({}, lambda idp: kubernetes(idp.issuer, "vault", namespaces=["ci"]),
         {"aud": "vault", "kubernetes.io": {"namespace": ["ci"]}}),
        (REALM, lambda idp: keycloak(idp.url, "demo"), {"typ": ["Bearer"]}),
        ({}, lambda idp: github_actions("aud", repository_owner="octo", issuer=idp.issuer),
         {"aud": "aud", "repository_owner": ["octo"]}),
    ],
    ids=["okta-cid", "clerk-azp", "kubernetes-namespace", "keycloak-typ", "github-owner"],
)  # fmt: skip
def test_a_claim_of_the_wrong_type_is_refused_never_a_500(
    fake: dict[str, str], build: Callable[[FakeOIDC], Provider], claims: dict[str, Any]
) -> None:
    """An identity provider (buggy, hostile) may sign a list where a preset checks a string:
    refused as the token's fault, never a TypeError out of the request."""
    with FakeOIDC(**fake) as idp:
        auth = Authenticator([build(idp)])
        with pytest.raises(AuthGateError) as caught:
            auth.authenticate(bearer(idp.mint("someone", **claims)))
        assert caught.value.status == 401, caught.value


def test_cognito_and_google_claims_of_the_wrong_type_are_refused(
    pool: FakeCognito, google_keys: FakeGoogle
) -> None:
    with pytest.raises(BadAudience):
        cognito_for(pool).authenticate(bearer(pool.access_token(client_id=[pool.client_id])))
    caller = "billing@our-project.iam.gserviceaccount.com"
    provider = google("https://api.example.com", emails=[caller], keys_url=google_keys.jwks_url)
    token = google_keys.id_token("1099", aud="https://api.example.com", email=[caller])
    with pytest.raises(BadAudience):
        Authenticator([provider]).authenticate(bearer(token))
