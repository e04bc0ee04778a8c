"""Authon: RS256 access tokens, ``pk_``/``sk_`` API keys, ``GET /v1/auth/token/verify``.

Local RS256 verification when a key source is configured (Authon does not document where its
keys are published, nor its claim names: both are configuration). Otherwise, or when the
token's ``kid`` stays unknown, the verify endpoint with the secret key. A banned user
(``isBanned: true``) holds a valid token but gets 403, locally and remotely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._config import header_safe
from .._exchange import Plan, Request, Response
from .._remote import Claims, RemotePolicy, upstream_error
from .._upstream import Upstream, allowed_http, check_url, upstream_of
from ..apikeys import APIKey, APIKeyRing
from ..errors import BadAudience, ConfigurationError, Forbidden, InvalidToken
from ..extract import Credential
from ..jwt import JWTVerifier, unverified_exp
from ..keys import KeySet
from ..keysources import RemoteKeySource
from ..principal import Principal, RolePath, principal_from_claims
from .base import HybridProvider, credential_kind

__all__ = ["AUTHON_KEY_PREFIXES", "AuthonProvider", "classify_authon_key"]

AUTHON_KEY_PREFIXES: Final = ("pk_live_", "pk_test_", "sk_live_", "sk_test_")
SECRET_ONLY_SCOPE: Final = "authon:secret"  # noqa: S105 (a scope name, not a secret)
VERIFY_PATH: Final = "/v1/auth/token/verify"


def classify_authon_key(value: str) -> tuple[str, str] | None:
    """``(kind, environment)`` of an Authon API key, e.g. ``("secret", "live")``; else ``None``.

    Args:
        value: a presented credential.
    """
    if not value.startswith(AUTHON_KEY_PREFIXES):
        return None
    kind = "publishable" if value.startswith("pk_") else "secret"
    return kind, value[3:7]


class AuthonProvider(HybridProvider):
    """Authon tokens and keys (access tokens are RS256 JWTs).

    Args:
        secret_key: the ``sk_live_…``/``sk_test_…`` key for the verify endpoint (remote
            verification is off without it).
        base_url: Authon's API.
        keys: a key source or ``KeySet`` for local RS256 verification.
        issuer: the ``iss`` Authon tokens carry, when known (exact match; routes tokens here);
            checked locally, so it needs ``keys``.
        audience: the ``aud`` to require, when Authon tokens carry one; checked locally, so it
            needs ``keys`` (Authon's verify endpoint answers with the user, not the claims).
        api_keys: Authon API keys this service accepts (see :meth:`add_api_key`).
        project_id: when set, only this project's users are accepted: the verify endpoint's
            ``projectId``, or the token's ``projectId`` claim locally (a token without it is
            refused). Set it when one Authon account holds several projects.
        subject_claim: the JWT claim holding the user id.
        banned_claim: the JWT claim that marks a banned user.
        name: the provider's name.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    algorithms = frozenset({"RS256"})
    accepts_api_keys = True  # pk_/sk_ keys, from x-api-key or as Bearer values

    def __init__(
        self,
        secret_key: str | None = None,
        *,
        base_url: str = "https://api.authon.dev",
        keys: KeySet | RemoteKeySource | None = None,
        issuer: str | None = None,
        audience: str | Iterable[str] | None = None,
        api_keys: APIKeyRing | None = None,
        subject_claim: str = "sub",
        banned_claim: str = "isBanned",
        project_id: str | None = None,
        name: str = "authon",
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        if secret_key is not None:
            header_safe(secret_key, "Authon's secret_key")
            if not secret_key.startswith(("sk_live_", "sk_test_")):
                raise ConfigurationError(
                    "Authon's verify endpoint needs a secret key (sk_live_/sk_test_)"
                )
        self.secret_key = secret_key
        self.verify_url = check_url(
            base_url.rstrip("/") + VERIFY_PATH, "Authon's base_url", allowed_http(upstream)
        )
        self.subject_claim = subject_claim
        self.banned_claim = banned_claim
        if project_id is not None and (not isinstance(project_id, str) or not project_id):
            raise ConfigurationError("Authon's project_id must be a project id (proj_…)")
        self.project_id = project_id
        if keys is None and (issuer is not None or audience is not None):
            raise ConfigurationError(
                "Authon's issuer and audience are checked on local verification: give keys= too"
            )
        verifier = None
        if keys is not None:
            verifier = JWTVerifier(
                keys,
                algorithms=["RS256"],
                issuer=issuer,
                audience=audience,
                clock=upstream_of(upstream).clock,
            )
        if api_keys is None:
            api_keys = APIKeyRing(prefixes=AUTHON_KEY_PREFIXES)
        elif not set(api_keys.prefixes) <= set(AUTHON_KEY_PREFIXES) or not api_keys.prefixes:
            raise ConfigurationError("an Authon key ring takes the pk_/sk_ live/test prefixes")
        super().__init__(
            name,
            verifier=verifier,
            remote=secret_key is not None,
            ring=api_keys,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )
        if self.verifier is None and self.remote is None:
            raise ConfigurationError("Authon needs keys for local verification or a secret_key")
        self.accepts_api_keys = True  # its ring always exists (Authon keys can be added later)

    def __repr__(self) -> str:
        local, remote = self.verifier is not None, self.remote is not None
        return f"AuthonProvider({self.name!r}, local={local}, remote={remote})"

    def secrets(self) -> tuple[str, ...]:
        return (self.secret_key,) if self.secret_key is not None else ()

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        return value.startswith(AUTHON_KEY_PREFIXES)

    def add_api_key(
        self, raw_key: str, *, subject: str, name: str | None = None, scopes: Iterable[str] = ()
    ) -> APIKey:
        """Accept an Authon API key; its kind and environment come from its prefix.

        A publishable key may not carry the secret-only scope ``authon:secret``.

        Args:
            raw_key: the ``pk_…``/``sk_…`` key (hashed now, never kept).
            subject: who the key stands for.
            name: a label.
            scopes: what it may do.
        """
        classified = classify_authon_key(raw_key)
        if classified is None:
            raise ConfigurationError("not an Authon key: expected pk_/sk_ live/test prefixes")
        kind, environment = classified
        granted = set(scopes)
        if kind == "publishable" and SECRET_ONLY_SCOPE in granted:
            raise ConfigurationError("a publishable key cannot hold the authon:secret scope")
        if kind == "secret":
            granted.add(SECRET_ONLY_SCOPE)
        assert self.ring is not None
        return self.ring.add(
            raw_key, subject=subject, name=name, scopes=granted, environment=environment, kind=kind
        )

    # -- the remote exchange ------------------------------------------------------------------

    def plan(self, token: str) -> Plan[Claims]:
        assert self.secret_key is not None
        response = yield Request(
            "GET",
            self.verify_url,
            {"x-api-key": self.secret_key, "authorization": f"Bearer {token}"},
        )
        return self._read_user(response, token)

    def _read_user(self, response: Response, token: str) -> Claims:
        if response.status == 200:
            user = response.json()
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                raise upstream_error(response, "Authon's verify endpoint (no user id)")
            if user.get("isBanned") is True:
                raise Forbidden("this user is banned")
            claims: Claims = dict(user)
            exp = unverified_exp(token)  # Authon vouched for the token: its exp bounds the cache
            if exp is not None:
                claims["exp"] = exp
            return claims
        if response.status in (400, 401, 404, 422):
            raise InvalidToken("Authon rejected the access token")
        if response.status == 403:
            # 403 means our secret key lacks the right: our configuration, not the caller's fault.
            raise upstream_error(response, "Authon's verify endpoint (secret key refused)")
        raise upstream_error(response, "Authon's verify endpoint")

    # -- principals ---------------------------------------------------------------------------

    def _same_project(self, claims: Mapping[str, Any]) -> None:
        if self.project_id is not None and claims.get("projectId") != self.project_id:
            raise BadAudience(
                "the token belongs to another Authon project", claim="projectId"
            ).with_context(expected_aud=self.project_id, aud=claims.get("projectId"))

    def local_principal(self, claims: dict[str, Any]) -> Principal:
        self._same_project(claims)
        if claims.get(self.banned_claim) is True:
            raise Forbidden("this user is banned")
        return principal_from_claims(
            claims,
            provider=self.name,
            subject_claim=self.subject_claim,
            tenant_claims=("projectId",),
            name_claims=("displayName", "name"),
            role_claims=self.role_claims,
        )

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        self._same_project(claims)
        mapped = dict(claims)
        mapped["sub"] = claims["id"]
        return principal_from_claims(
            mapped,
            provider=self.name,
            credential=credential_kind(credential),
            verified_by="remote",
            tenant_claims=("projectId",),
            name_claims=("displayName",),
            role_claims=self.role_claims,
        )

    def key_principal(self, credential: Credential, entry: APIKey) -> Principal:
        classified = classify_authon_key(credential.value)
        assert classified is not None
        kind, environment = classified
        scopes = entry.scopes
        if kind == "publishable":  # a publishable key never grants what a secret key does
            scopes = scopes - {SECRET_ONLY_SCOPE}
        return entry.principal(
            self.name, scopes=scopes, extra={"key_kind": kind, "environment": environment}
        )
