"""Every provider base: what a provider is, and the three shapes the built-in ones take.

- :class:`Provider`: the contract (routing attributes and ``verify``/``verify_async``).
- :class:`JWTProvider`: JWTs verified locally by a :class:`~authgate.JWTVerifier`.
- :class:`HybridProvider`: an optional local verifier, an optional verification endpoint and
  an optional API-key ring; local where possible, remote where local cannot decide.
- :class:`RemoteProvider`: a :class:`HybridProvider` with only an endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._config import names
from .._exchange import Plan
from .._json import as_number
from .._remote import Claims, RemoteClient, RemotePolicy
from .._upstream import Upstream, upstream_of
from ..apikeys import APIKey, APIKeyRing
from ..errors import ConfigurationError, InvalidToken, KeyNotFound, KeySourceUnavailable
from ..events import Event
from ..extract import Credential
from ..jwt import JWTVerifier
from ..principal import (
    CredentialKind,
    Principal,
    RolePath,
    VerifiedBy,
    principal_from_claims,
    role_paths,
)
from ..store import Store

__all__ = ["HybridProvider", "JWTProvider", "Provider", "RemoteProvider"]


class Provider:
    """A source of verified principals: the contract every provider fulfils.

    Set these attributes (class or instance) so the :class:`~authgate.Authenticator` can
    route to you without calling you:

    - ``name``: unique among the configured providers; shown on every principal.
    - ``issuer``: the exact ``iss`` of your JWTs, or ``None``. A JWT whose unverified ``iss``
      equals it is routed here; two providers may not share one.
    - ``issuer_template``: for a family of issuers (one per tenant), set it and override
      :meth:`accepts_issuer`; JWTs whose ``iss`` it accepts are routed here.
    - ``algorithms``: the JWS algorithms you verify (routes issuer-less JWTs by ``alg``).
    - ``accepts_jwt``: JWTs may be routed here.
    - ``accepts_opaque``: non-JWT Bearer values may be routed here (an endpoint vouches).
    - ``accepts_api_keys``: API keys may be routed here; then override
      :meth:`accepts_api_key` if, beyond ``x-api-key`` values, you claim Bearer values
      (by a key prefix such as ``sk_live_``).
    - ``api_key_prefixes``: the prefixes your keys carry. With several providers taking API
      keys, each needs its own (none a prefix of another's): ``x-api-key`` values are routed by
      them, and overlapping ones are refused at construction.
    - ``cache_ttl``: the longest your principals are cached (``None``: until ``exp``).
    - ``token_header``: a request header (lower-case) your tokens arrive in instead of
      ``Authorization``, e.g. AWS ALB's ``x-amzn-oidc-data``. Its values are routed to you
      alone, and nothing else is: set ``accepts_jwt`` false.

    Override :meth:`verify` and :meth:`verify_async` (the async one must not block the event
    loop). Return a :class:`~authgate.Principal` (build it with
    :func:`~authgate.providers.principal_from_claims`), or raise an ``AuthGateError``: an
    ``InvalidToken`` subclass to reject the credential (401), ``Forbidden`` for a valid
    credential without the right (403), ``ServiceUnavailable`` for your outage (503). Never
    put the credential in a message.
    """

    name: str = "provider"
    revocable: bool = False
    """Tokens are revoked by sign-out (``Authenticator.revoke``): with a shared store and
    ``on_unavailable="refuse"``, they are refused while revocations cannot be confirmed."""
    role_claims: tuple[RolePath, ...] = ()
    issuer: str | None = None
    issuer_template: str | None = None
    algorithms: frozenset[str] = frozenset()
    accepts_jwt: bool = True
    accepts_opaque: bool = False
    accepts_api_keys: bool = False
    api_key_prefixes: tuple[str, ...] = ()
    cache_ttl: float | None = None
    """The longest the Authenticator caches this provider's principals (``None``: until exp)."""
    token_header: str | None = None
    """The request header this provider's tokens arrive in, instead of ``Authorization``."""

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        """Whether ``value`` is an API key of ours (asked only when ``accepts_api_keys``).

        Args:
            value: the credential value.
            from_header: it came as ``x-api-key`` (else as a Bearer value: only keys with a
                recognisable prefix should be claimed then).
        """
        return from_header

    def accepts_issuer(self, issuer: str) -> bool:
        """Whether a JWT with this unverified ``iss`` is routed here (asked only when
        ``issuer_template`` is set, and only for issuers no provider names exactly).

        Args:
            issuer: the token's unverified ``iss``.
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

    def observe(self, emit: Callable[[Event], None]) -> None:
        """Report key fetches, remote calls and breaker changes to ``emit`` (the
        authenticator calls it once, with its event dispatcher). The default reports nothing;
        a provider with components of its own passes ``emit`` on to them.

        Args:
            emit: the authenticator's event dispatcher.
        """

    def use_store(self, store: Store) -> None:
        """Share remote results and key sets with the other workers through ``store`` (the
        authenticator calls it once when it has one). The default shares nothing.

        Args:
            store: an :class:`authgate.redis.RedisStore`.
        """

    def close(self) -> None:
        """Release this provider's pooled connections (``Authenticator.close()`` calls it).

        The default has nothing to release; a provider holding clients of its own closes
        them here. Later calls may open new connections.
        """

    async def aclose(self) -> None:
        """Like :meth:`close`, for this event loop's async connections (the ASGI lifespan and
        ``Authenticator.aclose()`` call it). The default calls :meth:`close`."""
        self.close()


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a provider needs a non-empty name")
    return name


class JWTProvider(Provider):
    """JWTs verified locally by a :class:`JWTVerifier`, mapped to a :class:`Principal`.

    Args:
        name: the provider's name, shown on the principal.
        verifier: the configured verifier (its ``issuer`` is used for routing).
        subject_claim: the claim holding the subject.
        tenant_claims: claims tried in order for the tenant.
        claims_hook: an optional hook that checks or enriches verified claims before mapping;
            it may raise an ``AuthGateError`` (e.g. ``Forbidden``).
        role_claims: where the roles are in the claims: names, dotted paths or tuples of
            names (presets: :class:`authgate.Roles`); they fill ``Principal.roles``.
    """

    def __init__(
        self,
        name: str,
        verifier: JWTVerifier,
        *,
        subject_claim: str = "sub",
        tenant_claims: Iterable[str] = ("tenant", "tid", "org_id", "projectId"),
        claims_hook: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        role_claims: Iterable[RolePath] = (),
    ) -> None:
        self.name = _checked_name(name)
        if not isinstance(verifier, JWTVerifier):
            raise ConfigurationError("JWTProvider needs a JWTVerifier")
        if claims_hook is not None and not callable(claims_hook):
            raise ConfigurationError("claims_hook must be callable")
        self.verifier = verifier
        self.issuer = verifier.issuer
        self.algorithms = verifier.algorithms
        self.subject_claim = subject_claim
        self.tenant_claims = names(tenant_claims, "tenant_claims")
        self.claims_hook = claims_hook
        self.role_claims = role_paths(role_claims)

    def __repr__(self) -> str:
        return f"JWTProvider({self.name!r}, issuer={self.issuer!r})"

    def verify(self, credential: Credential) -> Principal:
        return self.principal(self.verifier.verify(credential.value))

    async def verify_async(self, credential: Credential) -> Principal:
        return self.principal(await self.verifier.verify_async(credential.value))

    def observe(self, emit: Callable[[Event], None]) -> None:
        self.verifier.observe(emit)

    def use_store(self, store: Store) -> None:
        self.verifier.use_store(store)

    def close(self) -> None:
        self.verifier.close()

    async def aclose(self) -> None:
        await self.verifier.aclose()

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
            role_claims=self.role_claims,
        )


def credential_kind(credential: Credential) -> CredentialKind:
    """``jwt`` or ``opaque``, by the credential's shape.

    Args:
        credential: a Bearer credential.
    """
    return "jwt" if credential.is_jwt else "opaque"


class HybridProvider(Provider):
    """A provider with an optional local verifier, remote endpoint and API-key ring.

    Remote verification is used when the token is opaque, when no local key is configured for
    it, or when its ``kid`` is still unknown after the key source's refresh (or the keys cannot
    be fetched at all). Never after a definitive local failure (bad signature, expired, wrong
    claims): that answer is final and makes no network call.

    Subclasses build the pieces, implement :meth:`plan` when they have an endpoint, and may
    override how claims, endpoint answers and keys become principals (by default: the
    ``subject_claim`` and the usual claim names, see :func:`principal_from_claims`).

    Args:
        name: the provider's name.
        verifier: local JWT verification, when keys are configured.
        remote: whether an endpoint is configured (subclasses implement :meth:`plan`).
        ring: API keys, when configured.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    subject_claim: str = "sub"

    def __init__(
        self,
        name: str,
        *,
        verifier: JWTVerifier | None,
        remote: bool,
        ring: APIKeyRing | None = None,
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.name = _checked_name(name)
        self.role_claims = role_paths(role_claims)
        upstream = upstream_of(upstream)
        if verifier is None and not remote and ring is None:
            raise ConfigurationError(f"{name}: configure keys, a verification endpoint, or both")
        if ring is not None and not isinstance(ring, APIKeyRing):
            raise ConfigurationError(f"{name}: api_keys must be an authgate.APIKeyRing")
        if policy is not None and not remote:
            raise ConfigurationError(
                f"{name}: policy= sets how a verification endpoint is called, and none is "
                "configured"
            )
        self.verifier = verifier
        self.ring = ring
        self.issuer = verifier.issuer if verifier is not None else self.issuer
        self.algorithms = verifier.algorithms if verifier is not None else self.algorithms
        self.remote: RemoteClient | None = None
        if remote:
            self.remote = RemoteClient(
                name,
                self.plan,
                expires_at=self.expiry,
                policy=policy,
                upstream=upstream,
                clock=upstream.clock,
                secrets=self.secrets(),
            )
        # routing hints: opaque tokens only where an endpoint can vouch for them
        self.accepts_opaque = self.remote is not None
        self.accepts_jwt = verifier is not None or self.remote is not None
        self.accepts_api_keys = ring is not None
        self.api_key_prefixes = ring.prefixes if ring is not None else ()

    # -- what subclasses provide --------------------------------------------------------------

    def plan(self, token: str) -> Plan[Claims]:
        """The exchange with the endpoint: yield requests, return claims, or raise an
        ``AuthGateError`` (the token's rejection) or ``UpstreamError`` (an outage)."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Our own secrets the endpoint exchange sends (never logged, even when an upstream
        echoes them); called once, when the remote client is built."""
        return ()

    def expiry(self, claims: Claims) -> float | None:
        return as_number(claims.get("exp"))

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        return self.ring is not None and (from_header or self.ring.recognises(value))

    def local_principal(self, claims: dict[str, Any]) -> Principal:
        """The principal of locally verified claims.

        Args:
            claims: the verified claims.
        """
        return self._principal(claims, "local", "jwt")

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        """The principal of what the endpoint vouched for.

        Args:
            credential: the verified credential.
            claims: the endpoint's answer, as claims.
        """
        return self._principal(claims, "remote", credential_kind(credential))

    def key_principal(self, credential: Credential, entry: APIKey) -> Principal:
        """The principal of a matched API key.

        Args:
            credential: the presented key.
            entry: its ring entry.
        """
        return entry.principal(self.name)

    def _principal(
        self, claims: Mapping[str, Any], verified_by: VerifiedBy, kind: CredentialKind
    ) -> Principal:
        return principal_from_claims(
            claims,
            provider=self.name,
            credential=kind,
            verified_by=verified_by,
            subject_claim=self.subject_claim,
            role_claims=self.role_claims,
        )

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
            except (KeyNotFound, KeySourceUnavailable):
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
            except (KeyNotFound, KeySourceUnavailable):
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

    def observe(self, emit: Callable[[Event], None]) -> None:
        if self.verifier is not None:
            self.verifier.observe(emit)
        if self.remote is not None:
            self.remote.observe(emit)

    def use_store(self, store: Store) -> None:
        if self.verifier is not None:
            self.verifier.use_store(store)
        if self.remote is not None:
            self.remote.use_store(store)

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
        if self.remote is not None:
            self.remote.close()

    async def aclose(self) -> None:
        if self.verifier is not None:
            await self.verifier.aclose()
        if self.remote is not None:
            await self.remote.aclose()

    def _local_first(self, credential: Credential) -> bool:
        return self.verifier is not None and credential.is_jwt

    def _remote(self) -> RemoteClient:
        if self.remote is None:
            raise InvalidToken(f"{self.name} cannot verify this kind of token here")
        return self.remote


class RemoteProvider(HybridProvider):
    """A provider that verifies every token at an endpoint (implement :meth:`plan`).

    Args:
        name: the provider's name.
        issuer: route JWTs with this ``iss`` here.
        subject_claim: the claim holding the subject.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    accepts_opaque = True

    def __init__(
        self,
        name: str,
        *,
        issuer: str | None = None,
        subject_claim: str = "sub",
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        if issuer is not None and (not isinstance(issuer, str) or not issuer):
            raise ConfigurationError("issuer must be a non-empty string")
        self.issuer = issuer
        self.subject_claim = subject_claim
        super().__init__(
            name,
            verifier=None,
            remote=True,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream_of(upstream),
        )
        assert self.remote is not None
        self.client = self.remote
        self.cache_ttl = self.remote.policy.success_ttl
