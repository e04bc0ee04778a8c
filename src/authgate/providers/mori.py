"""Mori: 2-hour access tokens and ``user.apiKey`` API keys.

Mori documents a login (the token comes back in the ``accessToken`` response header and is
valid 2 hours) but no token format, key location or verify endpoint. So verification is what
the operator names: a key source for JWTs, or an endpoint (method, URL, header templates) for
any token, or both. Tokens without ``exp`` expire ``lifetime`` (2 h) after ``iat``. API keys
are checked against an :class:`~authgate.APIKeyRing` (from ``x-api-key``). User and contract
fields (``planType``, ``usageLimit``…) can be attached to every principal by ``profile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._config import leeway_seconds
from .._exchange import Plan
from .._json import as_number
from .._remote import Claims, RemotePolicy
from .._upstream import Upstream, upstream_of
from ..apikeys import APIKey, APIKeyRing
from ..errors import ConfigurationError, ExpiredToken, MissingClaim
from ..extract import Credential
from ..jwt import JWTVerifier
from ..keys import KeySet
from ..keysources import RemoteKeySource
from ..principal import CredentialKind, Principal, RolePath, VerifiedBy, principal_from_claims
from .base import HybridProvider, credential_kind
from .endpoint import Endpoint, endpoint_of

__all__ = ["MoriProvider"]

Profile = Callable[[str], Mapping[str, Any] | None]


class MoriProvider(HybridProvider):
    """Mori tokens and API keys, verified the way the operator configures.

    Args:
        keys: a key source or ``KeySet`` for JWT access tokens.
        algorithms: the JWT allowlist (``RS256`` unless given; needs ``keys``).
        issuer: the tokens' ``iss``, when they carry one (checked locally: needs ``keys``).
        endpoint: the endpoint that vouches for a token (the operator names it): an
            :class:`~authgate.Endpoint` (method, header and body templates, ``read_claims``),
            or its URL alone (``GET`` with ``Authorization: Bearer {token}``).
        subject_claim: the claim holding the client id (Mori's ``user.id``).
        api_keys: the ``user.apiKey`` values accepted.
        profile: the operator's mapping from subject to extra fields for the principal's claims
            (added beside the token's claims, never replacing one).
        lifetime: a token without ``exp`` expires this long after ``iat``.
        leeway: seconds of clock skew.
        name: the provider's name.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    def __init__(
        self,
        *,
        keys: KeySet | RemoteKeySource | None = None,
        algorithms: Iterable[str] | None = None,
        issuer: str | None = None,
        endpoint: Endpoint | str | None = None,
        subject_claim: str = "sub",
        api_keys: APIKeyRing | None = None,
        profile: Profile | None = None,
        lifetime: float = 7200.0,
        leeway: float = 30.0,
        name: str = "mori",
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        if not lifetime > 0:
            raise ConfigurationError("lifetime must be > 0 seconds")
        if keys is None and (algorithms is not None or issuer is not None):
            raise ConfigurationError(
                "Mori's algorithms and issuer are for local verification: give keys= too"
            )
        self.endpoint = (
            None if endpoint is None else endpoint_of(endpoint, "Mori's endpoint", upstream)
        )
        self.subject_claim = subject_claim
        self.profile = profile
        self.lifetime = lifetime
        self.leeway = leeway_seconds(leeway)
        self._clock = upstream_of(upstream).clock
        verifier = None
        if keys is not None:
            verifier = JWTVerifier(
                keys,
                algorithms=("RS256",) if algorithms is None else algorithms,
                issuer=issuer,
                leeway=leeway,
                required_claims=(),
                clock=self._clock,
            )
        super().__init__(
            name,
            verifier=verifier,
            remote=self.endpoint is not None,
            ring=api_keys,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )

    def __repr__(self) -> str:
        local = self.verifier is not None
        return f"MoriProvider({self.name!r}, local={local}, remote={self.endpoint!r})"

    def secrets(self) -> tuple[str, ...]:
        return () if self.endpoint is None else self.endpoint.secrets()

    def plan(self, token: str) -> Plan[Claims]:
        assert self.endpoint is not None
        response = yield self.endpoint.request(token)
        return self._with_lifetime(self.endpoint.read(response, self.name))

    def _with_lifetime(self, claims: Claims) -> Claims:
        """Give a token without ``exp`` the default lifetime after its ``iat``."""
        if claims.get("exp") is not None:
            return claims
        iat = as_number(claims.get("iat"))
        if iat is None:
            raise MissingClaim(
                "a Mori token needs exp, or iat to apply the 2-hour lifetime", claim="exp"
            )
        exp = iat + self.lifetime
        if self._clock() >= exp + self.leeway:
            raise ExpiredToken("the token has expired (2-hour lifetime)")
        return {**claims, "exp": exp}

    def _principal(
        self, claims: Mapping[str, Any], verified_by: VerifiedBy, kind: CredentialKind
    ) -> Principal:
        subject = claims.get(self.subject_claim)
        extra = (
            self.profile(str(subject)) if self.profile is not None and subject is not None else None
        )
        # extra fields only: what the token itself says (sub, exp, cnf...) is never replaced
        merged = {**extra, **claims} if extra else claims
        return principal_from_claims(
            merged,
            provider=self.name,
            credential=kind,
            verified_by=verified_by,
            subject_claim=self.subject_claim,
            role_claims=self.role_claims,
        )

    def local_principal(self, claims: dict[str, Any]) -> Principal:
        return self._principal(self._with_lifetime(claims), "local", "jwt")

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        return self._principal(claims, "remote", credential_kind(credential))

    def key_principal(self, credential: Credential, entry: APIKey) -> Principal:
        extra = self.profile(entry.subject) if self.profile is not None else None
        return entry.principal(self.name, extra=extra)
