"""Presets for identity providers people run: each returns a :class:`JWTProvider` configured with
the identifiers the provider's own documentation uses, its key URL, issuer, audience rule,
token-type rule and the claim checks its documentation asks resource servers to make.

- :func:`cognito`: AWS Cognito user pools, access or ID tokens ("Verifying a JSON Web Token",
  Amazon Cognito Developer Guide).
- :func:`firebase`: Firebase Authentication ID tokens ("Verify ID tokens using a third-party JWT
  library", Firebase documentation).
- :func:`auth0`: Auth0 access tokens for an API ("Validate Access Tokens", Auth0 docs).

Each takes an ``upstream`` (and an endpoint override, for a local fake or a private endpoint).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from .._upstream import Upstream
from ..errors import BadAudience, ConfigurationError, InvalidToken, MissingClaim, NotYetValid
from ..jwt import JWTVerifier
from ..keysources import CertificateKeySource, JWKSKeySource
from ..principal import RolePath
from .base import JWTProvider

__all__ = ["auth0", "cognito", "firebase"]

FIREBASE_CERTIFICATES = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
"""Where Google publishes the certificates that sign Firebase ID tokens."""


def _names(value: str | Iterable[str], what: str) -> frozenset[str]:
    names = frozenset([value] if isinstance(value, str) else value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(f"{what} must be a non-empty string or strings")
    return names


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
    )

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        if claims.get("token_use") != kind:
            raise InvalidToken(
                f"the token is not a Cognito {kind} token", claim="token_use"
            ).with_context(expected_token_use=kind, token_use=claims.get("token_use"))
        if kind == "access" and claims.get("client_id") not in clients:
            raise BadAudience("the token was issued to another app client", claim="client_id")
        return claims

    return JWTProvider(name, verifier, claims_hook=check, role_claims=role_claims)


def firebase(
    project_id: str,
    *,
    name: str = "firebase",
    role_claims: Iterable[RolePath] = (),
    certificates_url: str = FIREBASE_CERTIFICATES,
    upstream: Upstream | None = None,
    clock: Callable[[], float] | None = None,
) -> JWTProvider:
    """Firebase Authentication ID tokens, checked as Firebase documents: RS256 under Google's
    certificate map, ``aud`` the project id, ``iss`` ``https://securetoken.google.com/{project}``,
    ``sub`` a non-empty string (the user's uid), ``auth_time`` in the past. Custom claims
    (``role_claims``) can name roles.

    Args:
        project_id: the Firebase project id.
        name: the provider's name.
        role_claims: custom claims holding roles, if any.
        certificates_url: the certificate map (a local fake in tests).
        upstream: how to reach the certificates.
        clock: the clock ``auth_time`` is judged by (the verifier's by default).
    """
    project = _identifier(project_id, "project_id")
    verifier_options: dict[str, Any] = {} if clock is None else {"clock": clock}
    verifier = JWTVerifier(
        CertificateKeySource(certificates_url, upstream=upstream),
        algorithms=["RS256"],
        issuer=f"https://securetoken.google.com/{project}",
        audience=project,
        required_claims=("exp", "iat", "sub", "auth_time"),
        **verifier_options,
    )
    now = clock or time.time

    def check(claims: dict[str, Any]) -> Mapping[str, Any]:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise MissingClaim("a Firebase token's sub must be the user's uid", claim="sub")
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
            raise MissingClaim("a Firebase token needs a numeric auth_time", claim="auth_time")
        if auth_time > now() + verifier.leeway:
            raise NotYetValid("the sign-in is in the future (auth_time)", claim="auth_time")
        return claims

    return JWTProvider(name, verifier, claims_hook=check, role_claims=role_claims)


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
    )
    return JWTProvider(name, verifier, role_claims=role_claims)
