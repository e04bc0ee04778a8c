"""Presets for identity providers people run: each returns a :class:`JWTProvider` configured with
the identifiers the provider's own documentation uses, its key URL, issuer, audience rule,
token-type rule and the claim checks its documentation asks resource servers to make.

- :func:`cognito`: AWS Cognito user pools, access or ID tokens ("Verifying a JSON Web Token",
  Amazon Cognito Developer Guide).
- :func:`firebase`: Firebase Authentication ID tokens ("Verify ID tokens using a third-party JWT
  library", Firebase documentation).
- :func:`google`: Google ID tokens ("Authenticate with a backend server", Google Identity
  documentation: both issuer spellings, the client id as ``aud``, ``hd`` for Workspace).
- :func:`auth0`: Auth0 access tokens for an API ("Validate Access Tokens", Auth0 docs).
- :func:`keycloak`: a Keycloak realm's access tokens (Keycloak Server Administration Guide,
  "OpenID Connect": the realm issuer, discovery, realm and client roles).
- :func:`okta`: Okta access tokens from the org or a custom authorization server ("Validate
  access tokens", Okta developer docs).
- :func:`github_actions`: GitHub Actions OIDC tokens, with claim constraints ("About security
  hardening with OpenID Connect", GitHub docs).
- :func:`supabase`: Supabase Auth access tokens ("JWTs", Supabase docs).
- :func:`clerk`: Clerk session tokens, ``azp`` among the authorized parties ("Manual JWT
  verification", Clerk docs).
- :func:`entra`: Microsoft Entra ID access tokens, v1 or v2, one tenant or many ("Access
  tokens in the Microsoft identity platform", Microsoft Learn).
- :func:`kubernetes`: service-account tokens ("Service account token volume projection" and
  "ServiceAccount issuer discovery", Kubernetes docs).
- :func:`authgate.providers.aws_alb` (in :mod:`authgate.providers.alb`): the user claims an
  AWS Application Load Balancer forwards ("Authenticate users using an Application Load
  Balancer", Elastic Load Balancing User Guide).

Each takes an ``upstream`` (and an endpoint override, for a local fake or a private endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

from .._upstream import Upstream, upstream_of
from ..errors import (
    BadAudience,
    BadIssuer,
    ConfigurationError,
    InvalidToken,
    MissingClaim,
    NotYetValid,
)
from ..jwt import JWTVerifier
from ..keysources import CertificateKeySource, JWKSKeySource, OIDCKeySource
from ..principal import RolePath, Roles
from .base import JWTProvider, Provider
from .tenants import MultiTenantProvider, TenantLimits

__all__ = [
    "auth0",
    "clerk",
    "cognito",
    "entra",
    "firebase",
    "github_actions",
    "google",
    "keycloak",
    "kubernetes",
    "okta",
    "supabase",
]

FIREBASE_CERTIFICATES = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
"""Where Google publishes the certificates that sign Firebase ID tokens."""
GOOGLE_KEYS = "https://www.googleapis.com/oauth2/v3/certs"
"""Google's JWKS for ID tokens (the same keys as the certificate map at ``/oauth2/v1/certs``)."""
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
"""The two spellings of ``iss`` Google's ID tokens carry."""


def _names(value: str | Iterable[str], what: str) -> frozenset[str]:
    names = frozenset([value] if isinstance(value, str) else value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(f"{what} must be a non-empty string or strings")
    return names


def _among(value: Any, allowed: frozenset[str] | tuple[str, ...]) -> bool:
    """Whether a claim is one of ``allowed``: a string (a signed list or object is not, and
    never raises)."""
    return isinstance(value, str) and value in allowed


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "/?#@ "):
        raise ConfigurationError(f"{what} must be the identifier the provider shows, e.g. its id")
    return value


def cognito(
    region: str,
    user_pool_id: str,
    client_ids: str | Iterable[str],
    *,
    token_use: Literal["access", "id"] = "access",  # noqa: S107 (a token kind, no secret)
    name: str = "cognito",
    role_claims: Iterable[RolePath] = ("cognito:groups",),
    endpoint: str | None = None,
    upstream: Upstream | None = None,
) -> JWTProvider:
    """AWS Cognito user pool tokens, checked as AWS documents: RS256 with the pool's JWKS
    (``{issuer}/.well-known/jwks.json``), ``iss`` the pool, ``token_use`` the kind asked for,
    and the app client: ``client_id`` for access tokens (they carry no ``aud``), ``aud`` for
    ID tokens. ``cognito:groups`` become roles; an access token's ``scope`` its scopes.

    Args:
        region: the pool's AWS region (``eu-west-1``).
        user_pool_id: the pool id (``eu-west-1_AbCdEf123``).
        client_ids: the app client id(s) whose tokens are accepted.
        token_use: ``access`` (an API) or ``id`` (who signed in).
        name: the provider's name.
        role_claims: where the roles are (default: the pool's groups).
        endpoint: instead of ``https://cognito-idp.{region}.amazonaws.com`` (a local fake).
        upstream: how to reach the keys.
    """
    region = _identifier(region, "region")
    pool = _identifier(user_pool_id, "user_pool_id")
    clients = _names(client_ids, "client_ids")
    kind: str = token_use
    if kind not in ("access", "id"):
        raise ConfigurationError("token_use must be 'access' or 'id'")
    base = (endpoint or f"https://cognito-idp.{region}.amazonaws.com").rstrip("/")
    issuer = f"{base}/{pool}"
    verifier = JWTVerifier(
        JWKSKeySource(issuer + "/.well-known/jwks.json", upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        audience=sorted(clients) if kind == "id" else None,
        required_claims=("exp", "iat", "token_use", "sub"),
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if claims.get("token_use") != kind:
            raise InvalidToken(
                f"the token is not a Cognito {kind} token", claim="token_use"
            ).with_context(expected_token_use=kind, token_use=claims.get("token_use"))
        if kind == "access" and not _among(claims.get("client_id"), clients):
            raise BadAudience("the token was issued to another app client", claim="client_id")
        return claims

    return JWTProvider(name, verifier, claims_hook=check, role_claims=role_claims)


def firebase(
    project_id: str,
    *,
    accept_anonymous: bool = False,
    name: str = "firebase",
    role_claims: Iterable[RolePath] = (),
    certificates_url: str = FIREBASE_CERTIFICATES,
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Firebase Authentication ID tokens, checked as Firebase documents: RS256 under Google's
    certificate map, ``aud`` the project id, ``iss`` ``https://securetoken.google.com/{project}``,
    ``sub`` a non-empty string (the user's uid), ``auth_time`` in the past. Custom claims
    (``role_claims``) can name roles. An anonymous account (``firebase.sign_in_provider``
    ``anonymous``, which any client can create where the project enables anonymous sign-in)
    is refused unless ``accept_anonymous=True``.

    Args:
        project_id: the Firebase project id.
        accept_anonymous: accept anonymous accounts too (tell them apart by the principal's
            ``claims["firebase"]["sign_in_provider"]``).
        name: the provider's name.
        role_claims: custom claims holding roles, if any.
        certificates_url: the certificate map (a local fake in tests).
        upstream: how to reach the certificates; its clock judges ``exp`` and ``auth_time``.
    """
    if not isinstance(accept_anonymous, bool):
        raise ConfigurationError("accept_anonymous must be True or False")
    project = _identifier(project_id, "project_id")
    verifier = JWTVerifier(
        CertificateKeySource(certificates_url, upstream=upstream),
        algorithms=["RS256"],
        issuer=f"https://securetoken.google.com/{project}",
        audience=project,
        required_claims=("exp", "iat", "sub", "auth_time"),
        clock=upstream_of(upstream).clock,
    )
    now = upstream_of(upstream).clock

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise MissingClaim("a Firebase token's sub must be the user's uid", claim="sub")
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
            raise MissingClaim("a Firebase token needs a numeric auth_time", claim="auth_time")
        if auth_time > now() + verifier.leeway:
            raise NotYetValid("the sign-in is in the future (auth_time)", claim="auth_time")
        info = claims.get("firebase")
        method = info.get("sign_in_provider") if type(info) is dict else None
        if not accept_anonymous and method == "anonymous":
            raise InvalidToken("the Firebase account is anonymous", claim="firebase")
        return claims

    return JWTProvider(name, verifier, claims_hook=check, role_claims=role_claims)


class _Google(JWTProvider):
    """Routes both of Google's issuer spellings here (the exact one by ``issuer``)."""

    issuer_template = GOOGLE_ISSUERS[1]

    def accepts_issuer(self, issuer: str) -> bool:
        return issuer == GOOGLE_ISSUERS[1]


def google(
    client_id: str | Iterable[str],
    *,
    hosted_domain: str | None = None,
    emails: Iterable[str] | None = None,
    name: str = "google",
    keys_url: str = GOOGLE_KEYS,
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Google ID tokens ("Sign in with Google"), checked as Google documents: RS256 under
    Google's keys, ``aud`` your OAuth client id, ``iss`` ``https://accounts.google.com`` or
    ``accounts.google.com`` (Google uses both), and with ``hosted_domain`` the Workspace domain
    in ``hd`` (an account of another domain, or a consumer account, is refused).

    Any Google account signs in otherwise, service accounts included: a service account of any
    project may ask Google for an ID token with any audience (``generateIdToken``). For calls
    from services, name them in ``emails`` (Google: "verify the email claim"), so only their
    tokens, with a verified ``email``, are accepted.

    Args:
        client_id: your OAuth client id(s) (``….apps.googleusercontent.com``), or for calls
            from services the audience they ask for (your service's URL).
        hosted_domain: the Google Workspace domain whose accounts are accepted.
        emails: the only accounts accepted (``caller@project.iam.gserviceaccount.com``).
        name: the provider's name.
        keys_url: Google's JWKS (a local fake in tests).
        upstream: how to reach the keys.
    """
    audiences = sorted(_names(client_id, "client_id"))
    if hosted_domain is not None:
        hosted_domain = _identifier(hosted_domain, "hosted_domain")
    accounts = None if emails is None else _names(emails, "emails")
    verifier = JWTVerifier(
        JWKSKeySource(keys_url, upstream=upstream),
        algorithms=["RS256"],
        audience=audiences,
        required_claims=("exp", "iat", "iss", "sub"),
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if not _among(
            claims.get("iss"), GOOGLE_ISSUERS
        ):  # routing sends only these: kept as a guard
            raise BadIssuer("the token issuer is not accepted")
        if hosted_domain is not None and claims.get("hd") != hosted_domain:
            raise BadAudience("the account is not of the accepted Google Workspace domain",
                              claim="hd")  # fmt: skip
        if accounts is not None and (
            not _among(claims.get("email"), accounts) or claims.get("email_verified") is not True
        ):
            raise BadAudience("the account is not one of the accepted ones", claim="email")
        return claims

    provider = _Google(name, verifier, claims_hook=check)
    provider.issuer = GOOGLE_ISSUERS[0]
    return provider


def auth0(
    domain: str,
    audience: str | Iterable[str],
    *,
    name: str = "auth0",
    role_claims: Iterable[RolePath] = (),
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Auth0 access tokens for an API, checked as Auth0 documents: RS256 with the tenant's JWKS
    (``https://{domain}/.well-known/jwks.json``), ``iss`` ``https://{domain}/`` (with its
    trailing slash), ``aud`` the API identifier. ``permissions`` (RBAC) and ``scope`` become
    scopes; namespaced custom claims can name roles (``role_claims``).

    Args:
        domain: the tenant or custom domain (``example.eu.auth0.com``), or a base URL.
        audience: the API identifier(s).
        name: the provider's name.
        role_claims: where the roles are, e.g. ``"https://example.com/roles"``.
        upstream: how to reach the keys.
    """
    if not isinstance(domain, str) or not domain.strip("/"):
        raise ConfigurationError("domain must be the Auth0 domain, e.g. 'example.eu.auth0.com'")
    base = domain.rstrip("/") if "://" in domain else f"https://{domain.strip('/')}"
    verifier = JWTVerifier(
        JWKSKeySource(base + "/.well-known/jwks.json", upstream=upstream),
        algorithms=["RS256"],
        issuer=base + "/",
        audience=sorted(_names(audience, "audience")),
        clock=upstream_of(upstream).clock,
    )
    return JWTProvider(name, verifier, role_claims=role_claims)


def _base(url: str, what: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"{what} must be a URL such as 'https://auth.example.com'")
    return url.rstrip("/")


def keycloak(
    base_url: str,
    realm: str,
    *,
    audience: str | Iterable[str] | None = None,
    client_id: str | None = None,
    name: str = "keycloak",
    upstream: Upstream | None = None,
) -> JWTProvider:
    """A Keycloak realm's access tokens: the realm issuer ``{base_url}/realms/{realm}`` found
    by discovery, RS256, ``aud`` when ``audience`` is set (an audience mapper adds it), realm
    roles and ``client_id``'s client roles as roles. The realm signs its ID and logout tokens
    with the same key: a ``typ`` claim other than ``Bearer`` or ``DPoP`` (``ID``, ``Logout``)
    is refused.

    Args:
        base_url: the server (``https://keycloak.example.com``; ``/auth`` included if yours
            has it).
        realm: the realm name.
        audience: this API's client id as the tokens name it in ``aud``, when checked.
        client_id: the client whose roles count beside the realm's.
        name: the provider's name.
        upstream: how to reach the server.
    """
    issuer = f"{_base(base_url, 'base_url')}/realms/{_identifier(realm, 'realm')}"
    verifier = JWTVerifier(
        OIDCKeySource(issuer, upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        audience=None if audience is None else sorted(_names(audience, "audience")),
        clock=upstream_of(upstream).clock,
    )
    return JWTProvider(
        name, verifier, claims_hook=_keycloak_access, role_claims=Roles.keycloak(client_id)
    )


_KEYCLOAK_ACCESS: Final = frozenset({"Bearer", "DPoP"})  # Keycloak's TokenUtil.TOKEN_TYPE_*


def _keycloak_access(claims: dict[str, Any]) -> Mapping[str, Any]:
    """Keycloak's ``typ`` claim: an access token's is ``Bearer`` (``DPoP`` when bound); an ID
    token (``ID``), a logout token (``Logout``) or a refresh token is no credential here."""
    if "typ" in claims and not _among(claims["typ"], _KEYCLOAK_ACCESS):
        raise InvalidToken("the token is not a Keycloak access token", claim="typ").with_context(
            typ=str(claims["typ"])[:40]
        )
    return claims


def okta(
    domain: str,
    *,
    audience: str | Iterable[str] = "api://default",
    authorization_server: str | None = "default",
    client_ids: str | Iterable[str] | None = None,
    name: str = "okta",
    role_claims: Iterable[RolePath] = ("groups",),
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Okta access tokens: the issuer ``https://{domain}/oauth2/{authorization_server}`` (a
    custom server; ``None`` for the org server ``https://{domain}``) found by discovery, RS256,
    ``aud``, and ``cid`` among ``client_ids`` when given; ``scp`` as scopes.

    Args:
        domain: the Okta domain (``example.okta.com``), or a base URL.
        audience: the authorization server's audience.
        authorization_server: the custom authorization server id, or ``None`` for the org's.
        client_ids: the clients whose tokens are accepted (``cid``), when checked.
        name: the provider's name.
        role_claims: where the roles are (a ``groups`` claim, if you add one).
        upstream: how to reach the keys.
    """
    base = _base(domain if "://" in domain else f"https://{domain}", "domain")
    issuer = (
        base
        if authorization_server is None
        else f"{base}/oauth2/{_identifier(authorization_server, 'authorization_server')}"
    )
    clients = None if client_ids is None else _names(client_ids, "client_ids")
    verifier = JWTVerifier(
        OIDCKeySource(issuer, upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        audience=sorted(_names(audience, "audience")),
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if clients is not None and not _among(claims.get("cid"), clients):
            raise BadAudience("the token was issued to another client", claim="cid")
        return claims

    return JWTProvider(name, verifier, claims_hook=check, role_claims=role_claims)


GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


_GITHUB_OWNERS: Final = ("repository", "repository_owner", "repository_id", "repository_owner_id")


def github_actions(
    audience: str | Iterable[str],
    *,
    repository: str | None = None,
    repository_owner: str | None = None,
    repository_id: str | None = None,
    repository_owner_id: str | None = None,
    ref: str | None = None,
    environment: str | None = None,
    issuer: str = GITHUB_ACTIONS_ISSUER,
    name: str = "github-actions",
    upstream: Upstream | None = None,
) -> JWTProvider:
    """GitHub Actions OIDC tokens: the issuer ``https://token.actions.githubusercontent.com``
    (or an enterprise's), RS256 by discovery, ``aud``, and the constraints GitHub tells cloud
    providers to set (every one given must equal the token's claim). The subject is the
    token's ``sub`` (``repo:OWNER/REPO:ref:refs/heads/main``...).

    Any workflow in any repository on GitHub can ask for a token with any audience, so the
    audience alone admits the world: at least one of ``repository``, ``repository_owner`` or
    their ``_id`` is required. The ids (immutable, as GitHub recommends) keep out whoever
    registers a name after its owner deleted or renamed it.

    Args:
        audience: the audience the workflow asks for (``core.getIDToken(audience)``).
        repository: ``OWNER/REPO``.
        repository_owner: ``OWNER``.
        repository_id: the repository's numeric id, as the claim carries it (``"74"``).
        repository_owner_id: the owner's numeric id (``"65"``).
        ref: ``refs/heads/main``...
        environment: the deployment environment.
        issuer: an enterprise's own issuer.
        name: the provider's name.
        upstream: how to reach the keys.
    """
    issuer = _base(issuer, "issuer")
    constraints = {
        claim: value
        for claim, value in (
            ("repository", repository),
            ("repository_owner", repository_owner),
            ("repository_id", repository_id),
            ("repository_owner_id", repository_owner_id),
            ("ref", ref),
            ("environment", environment),
        )
        if value is not None
    }
    for claim, value in constraints.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{claim} must be a non-empty string")
    if constraints.keys().isdisjoint(_GITHUB_OWNERS):
        raise ConfigurationError(
            "github_actions needs repository=, repository_owner= or their _id: any workflow "
            "on GitHub can ask for a token with this audience"
        )
    verifier = JWTVerifier(
        OIDCKeySource(issuer, upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        audience=sorted(_names(audience, "audience")),
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        for claim, value in constraints.items():
            if claims.get(claim) != value:
                raise InvalidToken(
                    f"the workflow's {claim} is not the one allowed", claim=claim
                ).with_context(**{f"expected_{claim}": value})
        return claims

    return JWTProvider(name, verifier, claims_hook=check)


def supabase(
    project_url: str,
    *,
    audience: str = "authenticated",
    accept_anonymous: bool = False,
    name: str = "supabase",
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Supabase Auth access tokens signed with the project's asymmetric keys: the issuer
    ``{project_url}/auth/v1``, its JWKS at ``/auth/v1/.well-known/jwks.json``, ES256 or RS256,
    ``aud`` ``authenticated``; the ``role`` claim as a role. A user who signed in anonymously
    (``is_anonymous: true``, which anyone can do where the project allows anonymous
    sign-ins, with the same ``authenticated`` role and audience) is refused unless
    ``accept_anonymous=True``. (A project still on the legacy shared secret: ``JWTProvider``
    with ``KeySet.from_secret`` and HS256.)

    Args:
        project_url: ``https://<ref>.supabase.co``.
        audience: the audience (``authenticated``).
        accept_anonymous: accept anonymous sign-ins too (tell them apart by the principal's
            ``claims["is_anonymous"]``).
        name: the provider's name.
        upstream: how to reach the keys.
    """
    if not isinstance(accept_anonymous, bool):
        raise ConfigurationError("accept_anonymous must be True or False")
    issuer = _base(project_url, "project_url") + "/auth/v1"
    verifier = JWTVerifier(
        JWKSKeySource(issuer + "/.well-known/jwks.json", upstream=upstream),
        algorithms=["ES256", "RS256"],
        issuer=issuer,
        audience=audience,
        clock=upstream_of(upstream).clock,
    )
    if accept_anonymous:
        return JWTProvider(name, verifier, role_claims=["role"])

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if "is_anonymous" in claims and claims["is_anonymous"] is not False:
            raise InvalidToken("the Supabase user signed in anonymously", claim="is_anonymous")
        return claims

    return JWTProvider(name, verifier, role_claims=["role"], claims_hook=check)


def clerk(
    frontend_api: str,
    authorized_parties: str | Iterable[str],
    *,
    accept_pending: bool = False,
    name: str = "clerk",
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Clerk session tokens: RS256 under ``{frontend_api}/.well-known/jwks.json``, ``iss`` the
    Frontend API URL, ``azp`` among the origins allowed to send them (Clerk's CSRF guard; a
    token without one is refused), and a session that is not ``pending``: a v2 token's ``sts``
    says the user still has tasks to complete (choosing an organization, say), and Clerk's
    SDKs treat such a session as signed out unless told otherwise.

    Args:
        frontend_api: the Frontend API URL (``https://clerk.example.com``).
        authorized_parties: the origins of your frontends (``https://app.example.com``).
        accept_pending: accept pending sessions too (Clerk's ``treatPendingAsSignedOut=False``).
        name: the provider's name.
        upstream: how to reach the keys.
    """
    if not isinstance(accept_pending, bool):
        raise ConfigurationError("accept_pending must be True or False")
    issuer = _base(frontend_api, "frontend_api")
    parties = _names(authorized_parties, "authorized_parties")
    verifier = JWTVerifier(
        JWKSKeySource(issuer + "/.well-known/jwks.json", upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if not _among(claims.get("azp"), parties):
            raise BadAudience("the token was issued to another origin", claim="azp")
        if not accept_pending and claims.get("sts") == "pending":
            raise InvalidToken(
                "the Clerk session is pending: the user has tasks to complete", claim="sts"
            )
        return claims

    return JWTProvider(name, verifier, claims_hook=check)


ENTRA_AUTHORITY = "https://login.microsoftonline.com"


def entra(
    audience: str | Iterable[str],
    *,
    tenant_id: str | None = None,
    tenants: Iterable[str] | Callable[[str], bool] | None = None,
    version: Literal[1, 2] = 2,
    name: str = "entra",
    authority: str = ENTRA_AUTHORITY,
    limits: TenantLimits | None = None,
    upstream: Upstream | None = None,
) -> Provider:
    """Microsoft Entra ID access tokens for your API: RS256 by discovery at the tenant's
    issuer, ``aud`` your app's client id or App ID URI, ``roles`` (app roles) as roles and
    ``scp`` as scopes. v2 tokens are issued by ``{authority}/{tenant}/v2.0``; v1 tokens by
    ``https://sts.windows.net/{tenant}/`` (set ``version=1``; their keys come from the same
    authority). One tenant (``tenant_id``), or many (``tenants``: ids, or a callable for
    multi-tenant apps; each then needs its own discovery, bounded by ``limits``).

    Args:
        audience: your API's client id and/or App ID URI.
        tenant_id: the one tenant whose tokens are accepted.
        tenants: the tenants accepted by a multi-tenant app.
        version: the access-token version your app registration issues.
        name: the provider's name.
        authority: instead of ``https://login.microsoftonline.com`` (a national cloud, or a
            local fake).
        limits: the bounds on tenants met (multi-tenant only).
        upstream: how to reach the keys.
    """
    if (tenant_id is None) == (tenants is None):
        raise ConfigurationError("entra needs tenant_id (one tenant) or tenants (several)")
    if tenant_id is not None and limits is not None:
        raise ConfigurationError("limits bound the tenants met: they need tenants, not tenant_id")
    if version not in (1, 2):
        raise ConfigurationError("version must be 1 or 2")
    base = _base(authority, "authority")
    audiences = sorted(_names(audience, "audience"))
    if version == 2:
        template = base + "/{tenant}/v2.0"
    else:
        sts = "https://sts.windows.net" if base == ENTRA_AUTHORITY else base + "/sts"
        template = sts + "/{tenant}/"

    def keys(issuer: str) -> OIDCKeySource | JWKSKeySource:
        if version == 2:
            return OIDCKeySource(issuer, upstream=upstream)
        tenant = issuer.rstrip("/").rsplit("/", 1)[-1]  # v1 keys: the authority's JWKS
        return JWKSKeySource(f"{base}/{tenant}/discovery/keys", upstream=upstream)

    if tenant_id is not None:
        issuer = template.replace("{tenant}", _identifier(tenant_id, "tenant_id"))
        verifier = JWTVerifier(
            keys(issuer),
            algorithms=["RS256"],
            issuer=issuer,
            audience=audiences,
            clock=upstream_of(upstream).clock,
        )
        return JWTProvider(name, verifier, role_claims=["roles"])
    assert tenants is not None
    return MultiTenantProvider(
        name,
        template,
        tenants=tenants,
        algorithms=["RS256"],
        audience=audiences,
        role_claims=["roles"],
        keys=keys,
        limits=limits or TenantLimits(),
        upstream=upstream,
    )


def kubernetes(
    issuer: str,
    audience: str | Iterable[str],
    *,
    namespaces: Iterable[str] | None = None,
    name: str = "kubernetes",
    upstream: Upstream | None = None,
) -> JWTProvider:
    """Kubernetes service-account tokens: the cluster's ``--service-account-issuer`` by
    discovery (the API server's ``/.well-known/openid-configuration``), RS256, ``aud`` your
    audience, ``exp`` (projected tokens always carry one); the namespace
    (``kubernetes.io.namespace``) among ``namespaces`` when given. Legacy Secret-based tokens
    (``iss`` ``kubernetes/serviceaccount``, no ``exp``, no ``aud``) are not these: verify them,
    if you must, with ``JWTProvider`` over ``KeySet.from_pem`` of the service-account key,
    ``issuer="kubernetes/serviceaccount"`` and ``required_claims=()``. Mount a projected token
    with your own audience (``expirationSeconds`` 3600 by default): the default
    ``kube-api-access`` token may be extended to a year by the API server, longer than the
    authenticator's ``max_token_lifetime`` accepts.

    Args:
        issuer: the service-account issuer URL.
        audience: the audience your pods request (``serviceAccountToken.audience``).
        namespaces: the namespaces whose service accounts are accepted.
        name: the provider's name.
        upstream: how to reach the API server (its CA: ``Upstream(verify=...)``).
    """
    issuer = _base(issuer, "issuer")
    allowed = None if namespaces is None else _names(namespaces, "namespaces")
    verifier = JWTVerifier(
        OIDCKeySource(issuer, upstream=upstream),
        algorithms=["RS256"],
        issuer=issuer,
        audience=sorted(_names(audience, "audience")),
        clock=upstream_of(upstream).clock,
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if allowed is not None:
            details = claims.get("kubernetes.io")
            namespace = details.get("namespace") if isinstance(details, dict) else None
            if not _among(namespace, allowed):
                raise InvalidToken(
                    "the service account's namespace is not allowed", claim="kubernetes.io"
                )
        return claims

    return JWTProvider(name, verifier, claims_hook=check)
