"""The core every shell calls: extract → cache → route → verify → principal.

I/O happens only inside providers (key fetches, remote verification); everything here is
shared by the sync and async entry points, which differ in one ``await``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._cache import TokenCache, cache_key
from ._json import loads_strict
from .errors import (
    AlgorithmNotAllowed,
    BadIssuer,
    ConfigurationError,
    InvalidToken,
    MalformedToken,
    RevokedToken,
    TokenTooLarge,
)
from .extract import Credential, credential_from_headers
from .keys import b64url_decode
from .principal import Principal
from .providers.base import Provider
from .revocation import Denylist
from .verifiers.jwt import diagnose_compact, is_compact_jws, unverified_exp

__all__ = ["Authenticator"]

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


class Authenticator:
    """Extracts credentials, routes them to providers, and caches verified principals.

    Args:
        providers: the configured providers, in routing order.
        cache_max_entries: the most verified tokens cached (0 disables the cache).
        cache_max_bytes: the most (estimated) bytes the cache holds.
        cache_max_ttl: the longest a cache entry lives, whatever the token's ``exp``.
        clock: returns the current time; the cache and expiry checks use it.
        cookie_name: also accept a Bearer token from this cookie (off by default).
        realm: the ``realm`` of ``WWW-Authenticate`` challenges.
        max_token_lifetime: the longest any accepted token lives; bounds how long a
            revocation whose token expiry is unknown is remembered.
        max_credential_bytes: longer credentials are refused before routing or parsing.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        cache_max_entries: int = 10_000,
        cache_max_bytes: int = 32 * 1024 * 1024,
        cache_max_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
        cookie_name: str | None = None,
        realm: str = "api",
        max_token_lifetime: float = 86400.0,
        max_credential_bytes: int = 16384,
    ) -> None:
        providers = tuple(providers)
        if not providers:
            raise ConfigurationError("an Authenticator needs at least one provider")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ConfigurationError("provider names must be unique")
        if not all(isinstance(p, Provider) for p in providers):
            raise ConfigurationError("providers must be Provider instances")
        if '"' in realm or "\\" in realm:
            raise ConfigurationError("the realm may not contain quotes or backslashes")
        self.providers = providers
        self.max_credential_bytes = max_credential_bytes
        self.cookie_name = cookie_name
        self.realm = realm
        self._clock = clock
        self._by_issuer: dict[str, Provider] = {}
        for provider in providers:
            if provider.issuer is not None:
                self._by_issuer.setdefault(provider.issuer, provider)
        self._jwt_providers = tuple(p for p in providers if p.accepts_jwt)
        self._key_providers = tuple(
            p for p in providers if type(p).accepts_api_key is not Provider.accepts_api_key
        )
        self._only_jwt = self._jwt_providers[0] if len(self._jwt_providers) == 1 else None
        self._cache = (
            TokenCache(
                max_entries=cache_max_entries,
                max_bytes=cache_max_bytes,
                max_ttl=cache_max_ttl,
                clock=clock,
            )
            if cache_max_entries > 0
            else None
        )
        self._header_algs: dict[str, str] = {}
        self.denylist = Denylist(clock=clock, max_token_lifetime=max_token_lifetime)
        self._revocations = 0
        self._revocation_lock = threading.Lock()

    @property
    def cache(self) -> TokenCache | None:
        """The verified-token cache (``None`` when disabled)."""
        return self._cache

    # -- entry points -------------------------------------------------------------------------

    def authenticate(self, headers: Headers) -> Principal | None:
        """The principal of a request, ``None`` when it carries no credential.

        Raises an ``AuthGateError`` (``InvalidRequest``, ``InvalidToken``, ``Forbidden``,
        ``KeySourceError`` ...) when the credential is not accepted.

        Args:
            headers: the request headers, as a mapping or (name, value) pairs.
        """
        credential = credential_from_headers(headers, self.cookie_name)
        return None if credential is None else self.verify_credential(credential)

    async def authenticate_async(self, headers: Headers) -> Principal | None:
        """Like :meth:`authenticate`, without blocking the event loop.

        Args:
            headers: the request headers, as a mapping or (name, value) pairs.
        """
        credential = credential_from_headers(headers, self.cookie_name)
        return None if credential is None else await self.verify_credential_async(credential)

    def verify_credential(self, credential: Credential) -> Principal:
        """The principal for an extracted credential: from the cache, else from its provider.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        principal = self.cached(credential)
        if principal is None:
            generation = self._revocations
            provider = self._route(credential)
            principal = provider.verify(credential)
            self._admit(credential, principal, provider, generation)
        return principal

    async def verify_credential_async(self, credential: Credential) -> Principal:
        """Like :meth:`verify_credential`, without blocking the event loop.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        principal = self.cached(credential)
        if principal is None:
            generation = self._revocations
            provider = self._route(credential)
            principal = await provider.verify_async(credential)
            self._admit(credential, principal, provider, generation)
        return principal

    # -- the shared, pure parts ---------------------------------------------------------------

    def cached(self, credential: Credential) -> Principal | None:
        """The cached principal for ``credential``, if any is still valid.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        cache = self._cache
        key = cache_key(credential)
        if cache is None or key is None:
            return None
        return cache.get(key)

    # -- revocation ---------------------------------------------------------------------------

    def revoke(
        self,
        token: str | None = None,
        *,
        jti: str | None = None,
        subject: str | None = None,
        issued_before: float | None = None,
        issuer: str | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Deny a signed-out token, every token with a ``jti``, or a subject's older tokens.

        Denied credentials are purged from the cache at once and refused (401 ``revoked``) by
        every later verification, until they would have expired anyway.

        Args:
            token: the exact token (its ``exp`` and ``jti`` are read from it, unverified).
            jti: deny every token carrying this ``jti``.
            subject: with ``issued_before``: deny the subject's tokens issued earlier.
            issued_before: the cut-off ``iat`` for ``subject`` (default: now).
            issuer: restrict the subject revocation to this issuer.
            expires_at: when the ``jti``'s tokens expire, when known.
        """
        if token is None and jti is None and subject is None:
            raise ConfigurationError("revoke() needs a token, a jti, or a subject")
        with self._revocation_lock:
            self._revocations += 1
            if token is not None:
                self.denylist.revoke_token(token, unverified_exp(token))
                if self._cache is not None:
                    key = cache_key(Credential("bearer", token))
                    assert key is not None  # a Bearer value always has one
                    self._cache.discard(key)
            if jti is not None:
                self.denylist.revoke_jti(jti, expires_at)
            if subject is not None:
                cutoff = self._clock() if issued_before is None else issued_before
                self.denylist.revoke_subject(subject, cutoff, issuer)
            if self._cache is not None and (jti is not None or subject is not None):
                self._cache.discard_where(self.denylist.matches)

    def _admit(
        self, credential: Credential, principal: Principal, provider: Provider, generation: int
    ) -> None:
        if self.denylist.is_revoked(credential.value, principal):
            raise RevokedToken("the token has been revoked")
        with self._revocation_lock:
            # a revocation landing while we verified may not have seen this principal: recheck.
            if generation != self._revocations and self.denylist.is_revoked(
                credential.value, principal
            ):
                raise RevokedToken("the token has been revoked")
            self._remember(credential, principal, provider)

    def _remember(self, credential: Credential, principal: Principal, provider: Provider) -> None:
        key = cache_key(credential)
        if self._cache is None or key is None:
            return
        now = self._clock()
        valid_until = principal.expires_at
        ttl = provider.cache_ttl_for(principal)
        if ttl is not None:
            capped = now + ttl
            valid_until = capped if valid_until is None else min(valid_until, capped)
        for name in ("nbf", "iat"):  # accepted only thanks to leeway: verify again next time
            value = principal.claims.get(name)
            if isinstance(value, int | float) and value > now:
                return
        self._cache.put(key, principal, valid_until)

    def _route(self, credential: Credential) -> Provider:
        value = credential.value
        if len(value) > self.max_credential_bytes:
            raise TokenTooLarge(f"the credential is longer than {self.max_credential_bytes} bytes")
        from_header = credential.kind == "api_key"
        for provider in self._key_providers:
            if provider.accepts_api_key(value, from_header=from_header):
                return provider
        if from_header:
            raise InvalidToken("the API key is not recognised")
        if value.count(".") != 2:
            for provider in self.providers:
                if provider.accepts_opaque:
                    return provider
            raise MalformedToken("the Bearer token is not a JWT and no provider takes opaque ones")
        if self._only_jwt is not None:
            return self._only_jwt  # its verifier refuses a foreign iss before any fetch
        if not is_compact_jws(value):
            raise diagnose_compact(value)
        alg, issuer = self._peek(value)
        if issuer is not None:
            by_issuer = self._by_issuer.get(issuer)
            if by_issuer is not None:
                return by_issuer
        for provider in self._jwt_providers:
            if provider.issuer is None and alg in provider.algorithms:
                return provider
        if issuer is not None:
            raise BadIssuer("the token's issuer is not configured")
        raise AlgorithmNotAllowed("no configured provider accepts the token's algorithm")

    def _peek(self, token: str) -> tuple[str | None, str | None]:
        """The unverified ``alg`` and ``iss``: for routing only, never for trust."""
        head, payload, _ = token.split(".")
        alg = self._header_algs.get(head)
        try:
            if alg is None:
                header = loads_strict(b64url_decode(head))
                alg = header.get("alg") if isinstance(header, dict) else None
                if isinstance(alg, str) and len(self._header_algs) < 256:
                    self._header_algs[head] = alg
            claims: Any = loads_strict(b64url_decode(payload))
        except ValueError:
            raise MalformedToken("the token is not base64url JSON") from None
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        return (alg if isinstance(alg, str) else None), (
            issuer if isinstance(issuer, str) else None
        )
