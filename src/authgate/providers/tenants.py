"""Multi-tenant issuers: one provider for every tenant of an issuer template.

``https://login.microsoftonline.com/{tenant}/v2.0`` (Entra ID), ``https://sso.example.com/
realms/{tenant}`` (Keycloak realms): each tenant is its own issuer with its own keys. A
:class:`MultiTenantProvider` routes every JWT whose ``iss`` fits the template, refuses a
tenant outside ``tenants=`` before any network call, and gives each allowed issuer its own
verifier and key source (OIDC discovery at that issuer) on first use, bounded in number and
dropped when idle.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .._config import positive, size
from .._upstream import Upstream, allowed_http, check_url, upstream_of
from ..errors import BadIssuer, ConfigurationError, MalformedToken, ProviderUnavailable
from ..events import Event
from ..extract import Credential
from ..jwt import JWTVerifier, unverified_claims
from ..keysources import KeyFetchPolicy, OIDCKeySource, RemoteKeySource
from ..principal import Principal, RolePath, principal_from_claims, role_paths
from ..store import Store
from .base import Provider, _checked_name

__all__ = ["MultiTenantProvider", "TenantLimits"]

PLACEHOLDER: Final = "{tenant}"
_TENANT: Final = r"([A-Za-z0-9][A-Za-z0-9._-]{0,127})"
"""What a tenant may look like in an issuer: an id or a realm name, never a path."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TenantLimits:
    """What a :class:`MultiTenantProvider`'s issuers may cost: the memory of live verifiers,
    and the discoveries that anyone choosing tenants could otherwise trigger at will.

    Args:
        max_issuers: the most issuers with a live verifier; beyond it the least recently used
            one is dropped (its keys are fetched again if it returns), issuers whose keys
            could not be fetched first.
        idle_timeout: seconds after which an unused issuer's verifier is dropped.
        max_new: the most issuers first met per ``new_window`` (each costs a discovery);
            beyond it a new issuer is answered 503 with ``Retry-After`` until the window
            allows another, while known issuers are served as ever.
        new_window: the window of ``max_new``, in seconds.
    """

    max_issuers: int = 100
    idle_timeout: float = 3600.0
    max_new: int = 20
    new_window: float = 60.0

    def __post_init__(self) -> None:
        size(self.max_issuers, "TenantLimits.max_issuers", minimum=1)
        positive(self.idle_timeout, "TenantLimits.idle_timeout")
        size(self.max_new, "TenantLimits.max_new", minimum=1)
        positive(self.new_window, "TenantLimits.new_window")


DEFAULT_LIMITS: Final = TenantLimits()


class MultiTenantProvider(Provider):
    """JWTs from every allowed tenant of an issuer template, each verified with that
    issuer's own keys.

    Args:
        name: the provider's name.
        issuer_template: the issuer with one ``{tenant}`` placeholder, e.g.
            ``"https://login.microsoftonline.com/{tenant}/v2.0"``.
        tenants: the allowed tenants (a collection), or a callable deciding for each tenant
            (called on cache misses only; keep it fast). A refused tenant costs no network
            call; an allowed one costs a discovery and a JWKS fetch the first time. A permissive
            callable ("any GUID") lets anyone choose tenants: ``limits`` bound what that can
            cost.
        algorithms: the allowlist.
        audience: the expected ``aud`` (string or strings), when set.
        leeway: seconds of clock skew.
        required_claims: claims every token must carry.
        subject_claim: the claim holding the subject.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        keys: builds the key source of one issuer (default: OIDC discovery at the issuer).
        limits: how many issuers live at once, how long an idle one lives, how many new ones
            a window may bring (:class:`TenantLimits`).
        policy: the key fetch policy of every issuer's default key source (with ``keys``,
            give each source its own).
        upstream: how to reach the issuers.
    """

    accepts_jwt = True

    def __init__(
        self,
        name: str,
        issuer_template: str,
        *,
        tenants: Iterable[str] | Callable[[str], bool],
        algorithms: Iterable[str] = ("RS256",),
        audience: str | Iterable[str] | None = None,
        leeway: float = 30.0,
        required_claims: Iterable[str] = ("exp",),
        subject_claim: str = "sub",
        role_claims: Iterable[RolePath] = (),
        keys: Callable[[str], RemoteKeySource] | None = None,
        limits: TenantLimits = DEFAULT_LIMITS,
        policy: KeyFetchPolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.name = _checked_name(name)
        self.issuer_template = _template(issuer_template, upstream)
        prefix, suffix = issuer_template.split(PLACEHOLDER)
        self._pattern = re.compile(re.escape(prefix) + _TENANT + re.escape(suffix))
        self._allowed = _allowlist(tenants)
        if isinstance(algorithms, str):
            raise ConfigurationError("algorithms must be a list of names, not one string")
        self.algorithms = frozenset(algorithms)
        self.subject_claim = subject_claim
        self.role_claims = role_paths(role_claims)
        if not isinstance(limits, TenantLimits):
            raise ConfigurationError("limits must be an authgate.providers.TenantLimits")
        self.limits = limits
        self._met: deque[float] = deque()  # when each recent new issuer was first met
        self._clock = upstream_of(upstream).clock
        if keys is not None and not callable(keys):
            raise ConfigurationError("keys must build a key source from an issuer URL")
        if keys is not None and policy is not None:
            raise ConfigurationError(
                "policy is for the default key sources: with keys=, give each source its policy"
            )

        def default_keys(issuer: str) -> RemoteKeySource:
            return OIDCKeySource(issuer, policy=policy, upstream=upstream)

        self._keys = keys or default_keys
        self._settings: dict[str, Any] = {
            "algorithms": tuple(self.algorithms),
            "audience": audience,
            "leeway": leeway,
            "required_claims": tuple(required_claims),
            "clock": upstream_of(upstream).clock,
        }
        # every setting is checked now, on a throwaway verifier, not at a tenant's first token
        self._verifier_for(prefix + "configuration-check" + suffix, source=_NoKeys())
        self._lock = threading.Lock()
        self._verifiers: dict[str, tuple[JWTVerifier, float]] = {}  # issuer -> (it, last used)
        self._emit: Callable[[Event], None] | None = None
        self._store: Store | None = None
        self.issuers_built = 0
        """How many issuer verifiers were built (for metrics and tests)."""

    def __repr__(self) -> str:
        return f"MultiTenantProvider({self.name!r}, {self.issuer_template!r})"

    # -- routing ------------------------------------------------------------------------------

    def tenant_of(self, issuer: str) -> str | None:
        """The tenant an issuer names, when it fits the template (allowed or not).

        Args:
            issuer: a token's ``iss``.
        """
        found = self._pattern.fullmatch(issuer)
        return found.group(1) if found else None

    def accepts_issuer(self, issuer: str) -> bool:
        """Whether JWTs with this ``iss`` are routed here (it fits the template).

        Args:
            issuer: a token's unverified ``iss``.
        """
        return self.tenant_of(issuer) is not None

    # -- verification -------------------------------------------------------------------------

    def verify(self, credential: Credential) -> Principal:
        issuer, tenant = self._issuer(credential.value)
        store = self._store
        if store is not None and issuer not in self._verifiers:
            self._fleet_admits(lambda name, ttl: store.claim(name, ttl))
        return self._principal(self._verifier(issuer).verify(credential.value), tenant)

    async def verify_async(self, credential: Credential) -> Principal:
        issuer, tenant = self._issuer(credential.value)
        store = self._store
        if store is not None and issuer not in self._verifiers:
            await self._fleet_admits_async(store)
        claims = await self._verifier(issuer).verify_async(credential.value)
        return self._principal(claims, tenant)

    # -- the fleet's bound on new issuers: max_new slots per window, claimed in the store --

    def _slots(self) -> tuple[list[str], float]:
        """This window's slot names, and the seconds until the next window."""
        now = self._clock()
        window = self.limits.new_window
        slot = int(now // window)
        prefix = f"tenants:{self.name}:{slot}:"
        return [prefix + str(i) for i in range(self.limits.max_new)], (slot + 1) * window - now

    def _fleet_admits(self, claim: Callable[[str, float], bool | None]) -> None:
        """Take one of the fleet's new-issuer slots of this window, or refuse (503). A store
        that cannot answer leaves each worker to its own bound."""
        names, wait = self._slots()
        for name in names:
            if claim(name, self.limits.new_window) is not False:
                return
        self._fleet_full(wait)

    async def _fleet_admits_async(self, store: Store) -> None:
        names, wait = self._slots()
        for name in names:
            if await store.claim_async(name, self.limits.new_window) is not False:
                return
        self._fleet_full(wait)

    def _fleet_full(self, wait: float) -> None:
        error = ProviderUnavailable(retry_after=max(1.0, wait))
        error.detail = f"the fleet met more than {self.limits.max_new} new issuers this window"
        raise error

    def observe(self, emit: Callable[[Event], None]) -> None:
        with self._lock:
            self._emit = emit
            verifiers = [verifier for verifier, _ in self._verifiers.values()]
        for verifier in verifiers:
            verifier.observe(emit)

    def use_store(self, store: Store) -> None:
        with self._lock:
            self._store = store
            verifiers = [verifier for verifier, _ in self._verifiers.values()]
        for verifier in verifiers:
            verifier.use_store(store)

    def close(self) -> None:
        with self._lock:
            verifiers = [verifier for verifier, _ in self._verifiers.values()]
        for verifier in verifiers:
            verifier.close()

    async def aclose(self) -> None:
        with self._lock:
            verifiers = [verifier for verifier, _ in self._verifiers.values()]
        for verifier in verifiers:
            await verifier.aclose()

    @property
    def issuers(self) -> tuple[str, ...]:
        """The issuers with a live verifier now, least recently used first."""
        with self._lock:
            return tuple(sorted(self._verifiers, key=lambda i: self._verifiers[i][1]))

    def _issuer(self, token: str) -> tuple[str, str]:
        """The token's issuer and tenant, refused unless the tenant is allowed (no I/O)."""
        claims = unverified_claims(token)
        if claims is None:
            raise MalformedToken("the token payload is not base64url JSON")
        issuer = claims.get("iss")
        tenant = self.tenant_of(issuer) if isinstance(issuer, str) else None
        if tenant is None or not self._allowed(tenant):
            raise BadIssuer("the token's issuer is not accepted").with_context(
                expected_iss=self.issuer_template
            )
        assert isinstance(issuer, str)
        return issuer, tenant

    def _verifier(self, issuer: str) -> JWTVerifier:
        now = self._clock()
        with self._lock:
            held = self._verifiers.get(issuer)
            if held is not None:
                self._verifiers[issuer] = (held[0], now)
                return held[0]
            met = self._met
            while met and now - met[0] >= self.limits.new_window:
                met.popleft()
            if len(met) >= self.limits.max_new:
                # attacker-chosen tenants (a permissive callable) must not buy a discovery each
                wait = self.limits.new_window - (now - met[0])
                error = ProviderUnavailable(retry_after=max(1.0, wait))
                error.detail = f"more than {self.limits.max_new} new issuers this window"
                raise error
            met.append(now)
            dropped = self._make_room(now)
            verifier = self._verifier_for(issuer)
            if self._emit is not None:
                verifier.observe(self._emit)
            if self._store is not None:
                verifier.use_store(self._store)
            self._verifiers[issuer] = (verifier, now)
            self.issuers_built += 1
        for old in dropped:  # their connections, outside the lock
            old.close()
        return verifier

    def _make_room(self, now: float) -> list[JWTVerifier]:
        """Drop idle verifiers, then, beyond the bound, those whose keys never came (a failed
        discovery must not take a working tenant's slot), then the least recently used."""
        dropped = []
        for issuer, (verifier, used) in list(self._verifiers.items()):
            if now - used > self.limits.idle_timeout:
                del self._verifiers[issuer]
                dropped.append(verifier)
        while len(self._verifiers) >= self.limits.max_issuers:
            held = self._verifiers
            oldest = min(held, key=lambda i: (held[i][0].has_keys, held[i][1]))
            dropped.append(held.pop(oldest)[0])
        return dropped

    def _verifier_for(self, issuer: str, source: RemoteKeySource | None = None) -> JWTVerifier:
        return JWTVerifier(source or self._keys(issuer), issuer=issuer, **self._settings)

    def _principal(self, claims: dict[str, Any], tenant: str) -> Principal:
        principal = principal_from_claims(
            claims,
            provider=self.name,
            subject_claim=self.subject_claim,
            role_claims=self.role_claims,
        )
        if principal.tenant is None:  # no tenant claim: the issuer's tenant
            principal = dataclasses.replace(principal, tenant=tenant)
        return principal


class _NoKeys(RemoteKeySource):
    """A key source that is never asked for keys (validates settings at construction)."""

    @property
    def location(self) -> str:
        return "nowhere"


def _template(template: Any, upstream: Upstream | None) -> str:
    if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
        raise ConfigurationError(
            "issuer_template must hold exactly one '{tenant}' placeholder, e.g. "
            "'https://login.microsoftonline.com/{tenant}/v2.0'"
        )
    check_url(template.replace(PLACEHOLDER, "tenant"), "issuer_template", allowed_http(upstream))
    if "{" in template.replace(PLACEHOLDER, "") or "}" in template.replace(PLACEHOLDER, ""):
        raise ConfigurationError("issuer_template holds a placeholder other than '{tenant}'")
    return template


def _allowlist(tenants: Any) -> Callable[[str], bool]:
    if callable(tenants):
        decide: Callable[[str], Any] = tenants

        def ask(tenant: str) -> bool:
            return decide(tenant) is True

        return ask
    if isinstance(tenants, str | bytes) or not isinstance(tenants, Iterable | Mapping):
        raise ConfigurationError("tenants must be a list of tenant ids or a callable")
    allowed = frozenset(tenants)
    if not allowed or not all(isinstance(t, str) and t for t in allowed):
        raise ConfigurationError("tenants must name at least one non-empty tenant id")
    return allowed.__contains__
