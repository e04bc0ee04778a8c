"""What a provider is, and the generic one: JWTs verified locally by a :class:`JWTVerifier`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..extract import Credential
from ..principal import Principal, principal_from_claims
from ..verifiers.jwt import JWTVerifier

__all__ = ["JWTProvider", "Provider"]


class Provider:
    """A source of verified principals; subclasses say which credentials they take and how.

    The :class:`~authgate.Authenticator` routes a JWT to the provider whose ``issuer`` equals
    the token's unverified ``iss``, else to the first provider without an issuer that allows the
    token's ``alg``; API keys to the first provider that :meth:`accepts_api_key`; other opaque
    Bearer values to the first provider with ``accepts_opaque``.
    """

    name: str = "provider"
    issuer: str | None = None
    cache_ttl: float | None = None
    """The longest the Authenticator caches this provider's principals (``None``: until exp)."""
    algorithms: frozenset[str] = frozenset()
    accepts_jwt: bool = True
    accepts_opaque: bool = False

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        """Whether ``value`` is an API key of ours.

        Args:
            value: the credential value.
            from_header: it came as ``x-api-key`` (else as a Bearer value: only keys with a
                recognisable prefix should be claimed then).
        """
        return False

    def cache_ttl_for(self, principal: Principal) -> float | None:
        """The longest the Authenticator may cache ``principal`` (``None``: until its exp).

        Args:
            principal: a principal this provider just verified.
        """
        return self.cache_ttl

    def verify(self, credential: Credential) -> Principal:
        """Verify ``credential`` and return its principal; raise an ``AuthGateError`` otherwise.

        Args:
            credential: the credential routed to this provider.
        """
        raise NotImplementedError

    async def verify_async(self, credential: Credential) -> Principal:
        """Like :meth:`verify`, without blocking the event loop.

        Args:
            credential: the credential routed to this provider.
        """
        raise NotImplementedError


class JWTProvider(Provider):
    """JWTs verified locally by a :class:`JWTVerifier`, mapped to a :class:`Principal`.

    Args:
        name: the provider's name, shown on the principal.
        verifier: the configured verifier (its ``issuer`` is used for routing).
        subject_claim: the claim holding the subject.
        tenant_claims: claims tried in order for the tenant.
        claims_hook: an optional hook that checks or enriches verified claims before mapping;
            it may raise an ``AuthGateError`` (e.g. ``Forbidden``).
    """

    def __init__(
        self,
        name: str,
        verifier: JWTVerifier,
        *,
        subject_claim: str = "sub",
        tenant_claims: Iterable[str] = ("tenant", "tid", "org_id", "projectId"),
        claims_hook: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a provider needs a non-empty name")
        if not isinstance(verifier, JWTVerifier):
            raise ConfigurationError("JWTProvider needs a JWTVerifier")
        self.name = name
        self.verifier = verifier
        self.issuer = verifier.issuer
        self.algorithms = verifier.algorithms
        self.subject_claim = subject_claim
        self.tenant_claims = tuple(tenant_claims)
        self.claims_hook = claims_hook

    def __repr__(self) -> str:
        return f"JWTProvider({self.name!r}, issuer={self.issuer!r})"

    def verify(self, credential: Credential) -> Principal:
        return self.principal(self.verifier.verify(credential.value))

    async def verify_async(self, credential: Credential) -> Principal:
        return self.principal(await self.verifier.verify_async(credential.value))

    def principal(self, claims: dict[str, Any]) -> Principal:
        """Map verified claims to the principal.

        Args:
            claims: the verified claims.
        """
        mapped = self.claims_hook(claims) if self.claims_hook is not None else claims
        return principal_from_claims(
            mapped,
            provider=self.name,
            subject_claim=self.subject_claim,
            tenant_claims=self.tenant_claims,
        )
