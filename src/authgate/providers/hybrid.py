"""Local where possible, remote where local cannot decide: the shape of the seed providers.

Remote verification is used when the token is opaque, when no local key is configured for it,
or when its ``kid`` is still unknown after the key source's refresh (or the keys cannot be
fetched at all). Never after a definitive local failure (bad signature, expired, wrong
claims): that answer is final and makes no network call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from .._http import Plan
from .._remote import Claims, RemoteClient, RemotePolicy
from ..apikeys import APIKey, APIKeyRing
from ..errors import ConfigurationError, InvalidToken, KeyNotFound, KeySourceError
from ..extract import Credential
from ..principal import Principal
from ..verifiers.jwt import JWTVerifier
from .base import Provider

__all__ = ["HybridProvider"]


class HybridProvider(Provider):
    """A provider with an optional local verifier, remote endpoint and API-key ring.

    Subclasses build the pieces and say how claims, user objects and keys become principals.

    Args:
        name: the provider's name.
        verifier: local JWT verification, when keys are configured.
        remote: whether an endpoint is configured (subclasses implement :meth:`_plan`).
        ring: API keys, when configured.
        policy: the remote call policy.
        clock: returns the current time.
        transport: an httpx transport for sync calls (tests inject one).
        async_transport: an httpx transport for async calls.
    """

    def __init__(
        self,
        name: str,
        *,
        verifier: JWTVerifier | None,
        remote: bool,
        ring: APIKeyRing | None = None,
        policy: RemotePolicy | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if verifier is None and not remote and ring is None:
            raise ConfigurationError(f"{name}: configure keys, a verification endpoint, or both")
        self.name = name
        self.verifier = verifier
        self.ring = ring
        self.issuer = verifier.issuer if verifier is not None else self.issuer
        self.algorithms = verifier.algorithms if verifier is not None else self.algorithms
        self.remote: RemoteClient | None = None
        if remote:
            self.remote = RemoteClient(
                name,
                self._plan,
                expires_at=self._expires_at,
                policy=policy,
                clock=clock,
                transport=transport,
                async_transport=async_transport,
            )
        # routing hints: opaque tokens only where an endpoint can vouch for them
        self.accepts_opaque = self.remote is not None
        self.accepts_jwt = verifier is not None or self.remote is not None

    # -- what subclasses provide --------------------------------------------------------------

    def _plan(self, token: str) -> Plan[Claims]:
        raise NotImplementedError

    def _expires_at(self, claims: Claims) -> float | None:
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None

    def local_principal(self, claims: dict[str, Any]) -> Principal:
        """The principal of locally verified claims.

        Args:
            claims: the verified claims.
        """
        raise NotImplementedError

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        """The principal of what the endpoint vouched for.

        Args:
            credential: the verified credential.
            claims: the endpoint's answer, as claims.
        """
        raise NotImplementedError

    def key_principal(self, credential: Credential, entry: APIKey) -> Principal:
        """The principal of a matched API key.

        Args:
            credential: the presented key.
            entry: its ring entry.
        """
        raise NotImplementedError

    def cache_ttl_for(self, principal: Principal) -> float | None:
        if principal.credential == "api_key":
            return 0.0
        if principal.verified_by == "remote" and self.remote is not None:
            return self.remote.policy.success_ttl
        return None

    # -- the two entry points: identical but for the awaits ----------------------------------

    def verify(self, credential: Credential) -> Principal:
        if self._is_key(credential):
            return self._key(credential)
        if self._local_first(credential):
            assert self.verifier is not None
            try:
                return self.local_principal(self.verifier.verify(credential.value))
            except (KeyNotFound, KeySourceError):
                if self.remote is None:
                    raise
        return self.remote_principal(credential, self._remote().verify(credential.value))

    async def verify_async(self, credential: Credential) -> Principal:
        if self._is_key(credential):
            return self._key(credential)
        if self._local_first(credential):
            assert self.verifier is not None
            try:
                return self.local_principal(await self.verifier.verify_async(credential.value))
            except (KeyNotFound, KeySourceError):
                if self.remote is None:
                    raise
        claims = await self._remote().verify_async(credential.value)
        return self.remote_principal(credential, claims)

    # -- the shared, pure parts ---------------------------------------------------------------

    def _is_key(self, credential: Credential) -> bool:
        return credential.kind == "api_key" or (
            self.ring is not None and self.ring.recognises(credential.value)
        )

    def _key(self, credential: Credential) -> Principal:
        entry = self.ring.lookup(credential.value) if self.ring is not None else None
        if entry is None:
            raise InvalidToken("the API key is not recognised")
        return self.key_principal(credential, entry)

    def _local_first(self, credential: Credential) -> bool:
        return self.verifier is not None and credential.value.count(".") == 2

    def _remote(self) -> RemoteClient:
        if self.remote is None:
            raise InvalidToken(f"{self.name} cannot verify this kind of token here")
        return self.remote
