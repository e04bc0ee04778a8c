"""The core every shell calls: extract → cache → route → verify → principal.

I/O happens only inside providers (key fetches, remote verification); everything here is
shared by the sync and async entry points, which differ in one ``await``.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._cache import DEFAULT_CACHE, CacheLimits, Key, Stats, TokenCache
from ._config import positive, size
from ._decisions import Refusals
from ._json import as_number
from .dpop import DEFAULT_DPOP, DPoP, ProofChecker
from .errors import (
    AuthGateError,
    ConfigurationError,
    InvalidDPoPProof,
    InvalidToken,
    MalformedToken,
    ProviderUnavailable,
    RevokedToken,
    UnverifiedBinding,
)
from .events import Decision, Event
from .extract import (
    MAX_TOKEN_BYTES,
    Credential,
    TokenCookie,
    credential_from_headers,
    with_request,
)
from .jwt import unverified_claims
from .mtls import ClientCertificates
from .principal import Principal
from .providers.base import Provider
from .revocation import Denylist, token_digest
from .routing import Router
from .store import Store

_REPLAY = "dpop:"
"""The fleet-wide claim of a DPoP proof id in the shared store (a lock per proof)."""

__all__ = ["Authenticator"]

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


class Authenticator:
    """Extracts credentials, routes them to providers, and caches verified principals.

    Args:
        providers: the configured providers, in routing order.
        cache: the verified-token cache's bounds (:class:`CacheLimits`), or ``None``: no
            cache, every request is verified.
        clock: returns the current time; the cache and expiry checks use it.
        cookie: also accept a Bearer token from this cookie (:class:`TokenCookie`; off by
            default), refused on requests another site's page may have sent.
        realm: the ``realm`` of ``WWW-Authenticate`` challenges.
        max_token_lifetime: the longest any accepted token lives (from its ``iat``, or from
            now without one; a longer-lived token is refused, naming ``exp``): how long a
            revocation whose token expiry is unknown (a subject's, a ``jti``) is remembered.
        max_credential_bytes: longer credentials are refused before routing or parsing.
        refusal_log_level: the level of the one record each refusal gets on
            ``authgate.decisions`` (a ``logging`` level or its name; INFO by default).
        store: a shared store (:class:`authgate.redis.RedisStore`): revocations reach every
            worker of the fleet (and DPoP proof ids, so a proof replayed to another worker
            is refused too).
        dpop: how DPoP proofs are checked (:class:`authgate.dpop.DPoP`); ``None`` refuses
            every request under the DPoP scheme. A DPoP-bound token (``cnf.jkt``) is never
            accepted as a Bearer token, whatever this says.
        client_certificates: where the shells find a request's client certificate
            (:class:`authgate.mtls.ClientCertificates`), for tokens bound to one (RFC 8705
            ``cnf.x5t#S256``); ``None``: such tokens are refused.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        cache: CacheLimits | None = DEFAULT_CACHE,
        clock: Callable[[], float] = time.time,
        cookie: TokenCookie | None = None,
        realm: str = "api",
        max_token_lifetime: float = 86400.0,
        max_credential_bytes: int = MAX_TOKEN_BYTES,
        refusal_log_level: int | str = "INFO",
        store: Store | None = None,
        dpop: DPoP | None = DEFAULT_DPOP,
        client_certificates: ClientCertificates | None = None,
    ) -> None:
        self.providers = _providers(providers)
        self.max_credential_bytes = size(max_credential_bytes, "max_credential_bytes", minimum=1)
        if cookie is not None and not isinstance(cookie, TokenCookie):
            raise ConfigurationError(
                'cookie must be an authgate.TokenCookie (TokenCookie("access_token")), or None'
            )
        if not isinstance(realm, str) or not realm.isprintable() or any(c in realm for c in '"\\'):
            raise ConfigurationError(
                "the realm must be printable text without quotes or backslashes"
            )
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning seconds since the epoch")
        if cache is not None and not isinstance(cache, CacheLimits):
            raise ConfigurationError("cache must be an authgate.CacheLimits, or None (no cache)")
        lifetime = positive(max_token_lifetime, "max_token_lifetime")
        self.cookie = cookie
        self.token_header = _token_header(self.providers)
        """The one provider header tokens may also arrive in (``Provider.token_header``)."""
        self.realm = realm
        self._clock = clock
        self._router = Router(self.providers, self.max_credential_bytes)
        self._cache = (
            None
            if cache is None
            else TokenCache(
                max_entries=cache.max_entries,
                max_bytes=cache.max_bytes,
                max_ttl=cache.max_ttl,
                clock=clock,
            )
        )
        self.denylist = Denylist(clock=clock, max_token_lifetime=lifetime)
        if dpop is not None and not isinstance(dpop, DPoP):
            raise ConfigurationError("dpop must be an authgate.dpop.DPoP, or None (no DPoP)")
        self.dpop = dpop
        self._proofs = None if dpop is None else ProofChecker(dpop, clock)
        if client_certificates is not None and not isinstance(
            client_certificates, ClientCertificates
        ):
            raise ConfigurationError(
                "client_certificates must be an authgate.mtls.ClientCertificates, or None"
            )
        self.client_certificates = client_certificates
        self._revocations = 0
        self._revocation_lock = threading.Lock()
        self.refusals = Refusals(refusal_log_level)
        """The refusal log (its ``level``, ``burst`` and ``window`` may be changed)."""
        self._listeners: list[Callable[[Event], None]] = []
        self._misses = 0
        for provider in self.providers:
            provider.observe(self._dispatch)
        self.store = store
        if store is not None:
            if not isinstance(store, Store):
                raise ConfigurationError(
                    "store must be an authgate.redis.RedisStore (or implement authgate.store.Store)"
                )
            store.subscribe(self._apply_revocations, self._purge_cache, self.denylist.records)
            if store.shares:  # authenticated records only: the store can deny, never admit
                for provider in self.providers:
                    provider.use_store(store)

    # -- observability ------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every :mod:`authgate.events` event from now on.

        Args:
            listener: a quick callable that does not raise (one that raises is logged once,
                then ignored).
        """
        if not callable(listener):
            raise ConfigurationError("an event listener must be callable")
        self._listeners.append(listener)

    def _dispatch(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception as exc:  # a metrics hook must never break authentication
                self._listeners.remove(listener)
                from ._log import warning

                warning(
                    "authgate.events",
                    "an event listener raised %s and was removed",
                    type(exc).__name__,
                )

    @property
    def stats(self) -> Stats:
        """Counters read when metrics are scraped: cache hits and misses, cache size."""
        cache = self._cache
        return Stats(
            hits=cache.hits if cache is not None else 0,
            misses=self._misses,
            cached=len(cache) if cache is not None else 0,
        )

    def refused(
        self, exc: AuthGateError, credential: Credential | None, *, path: str | None = None
    ) -> None:
        """Report a refusal: one record on ``authgate.decisions`` and a ``Decision`` event.
        The middleware calls it for every refusal it answers.

        Args:
            exc: the refusal.
            credential: the credential refused, when there was one.
            path: the request path, when known.
        """
        self.refusals.refused(exc, credential, path=path)
        if self._listeners:
            provider = exc.context.get("provider")
            self._dispatch(Decision("refused", exc.reason, provider, exc.status))

    @property
    def cache(self) -> TokenCache | None:
        """The verified-token cache (``None`` when disabled)."""
        return self._cache

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every provider's pooled connections (to key sets and verify endpoints).

        Safe to call more than once; a later request opens new connections. The ASGI
        middleware calls :meth:`aclose` at lifespan shutdown; WSGI apps call this at exit
        (or use the authenticator as a context manager).
        """
        for provider in self.providers:
            provider.close()
        self.refusals.flush()
        if self.store is not None:
            self.store.close()

    async def aclose(self) -> None:
        """Like :meth:`close`, awaiting the connections of the running event loop."""
        for provider in self.providers:
            await provider.aclose()
        self.refusals.flush()
        if self.store is not None:
            await self.store.aclose()

    def __enter__(self) -> Authenticator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Authenticator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- entry points -------------------------------------------------------------------------

    def authenticate(
        self, headers: Headers, *, method: str = "", uri: str = ""
    ) -> Principal | None:
        """The principal of a request, ``None`` when it carries no credential.

        Raises an ``AuthGateError`` (``InvalidRequest``, ``InvalidToken``, ``Forbidden``,
        ``KeySourceUnavailable`` ...) when the credential is not accepted.

        Args:
            headers: the request headers, as a mapping or (name, value) pairs.
            method: the request's method, which a DPoP proof must name (and which decides
                whether a token from the cookie needs a same-site request: unset, it does).
            uri: the request's URI (scheme, host, path), which a DPoP proof must name.
        """
        credential = None
        try:
            credential = with_request(
                credential_from_headers(headers, self.cookie, self.token_header, method=method),
                method,
                uri,
            )
            return None if credential is None else self.verify_credential(credential)
        except AuthGateError as exc:
            self.refused(exc, credential)
            raise

    async def authenticate_async(
        self, headers: Headers, *, method: str = "", uri: str = ""
    ) -> Principal | None:
        """Like :meth:`authenticate`, without blocking the event loop.

        Args:
            headers: the request headers, as a mapping or (name, value) pairs.
            method: the request's method, which a DPoP proof must name.
            uri: the request's URI (scheme, host, path), which a DPoP proof must name.
        """
        credential = None
        try:
            credential = with_request(
                credential_from_headers(headers, self.cookie, self.token_header, method=method),
                method,
                uri,
            )
            if credential is None:
                return None
            return await self.verify_credential_async(credential)
        except AuthGateError as exc:
            self.refused(exc, credential)
            raise

    def verify_credential(self, credential: Credential) -> Principal:
        """The principal for an extracted credential: from the cache, else from its provider.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        cache = self._cache
        key = None if cache is None else cache.key_for(credential)
        principal = None if cache is None or key is None else cache.get(key)
        if principal is None:
            self._misses += 1
            if self.store is not None:
                self.store.ensure_started()
            generation = self._revocations
            provider = None
            try:
                provider = self._router.route(credential)
                principal = provider.verify(credential)
                self._admit(credential, principal, provider, generation, key)
            except AuthGateError as exc:
                if provider is not None:
                    exc.context.setdefault("provider", provider.name)
                raise
            if self._listeners:
                self._dispatch(Decision("accepted", "ok", provider.name))
        if credential.proof is not None or credential.certificate is not None:
            # a plain Bearer key never holds a certificate-bound token (see _check_binding_shape);
            # a DPoP key may, and is found without the certificate too
            _check_certificate(credential.certificate, principal)
        if credential.proof is not None:
            self.check_proof(credential, principal)
        return principal

    async def verify_credential_async(self, credential: Credential) -> Principal:
        """Like :meth:`verify_credential`, without blocking the event loop.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        cache = self._cache
        key = None if cache is None else cache.key_for(credential)
        principal = None if cache is None or key is None else cache.get(key)
        if principal is None:
            self._misses += 1
            store = self.store
            if store is not None and not store.started:
                import asyncio

                await asyncio.to_thread(store.ensure_started)  # once, off the event loop
            generation = self._revocations
            provider = None
            try:
                provider = self._router.route(credential)
                principal = await provider.verify_async(credential)
                self._admit(credential, principal, provider, generation, key)
            except AuthGateError as exc:
                if provider is not None:
                    exc.context.setdefault("provider", provider.name)
                raise
            if self._listeners:
                self._dispatch(Decision("accepted", "ok", provider.name))
        if credential.proof is not None or credential.certificate is not None:
            # a plain Bearer key never holds a certificate-bound token (see _check_binding_shape);
            # a DPoP key may, and is found without the certificate too
            _check_certificate(credential.certificate, principal)
        if credential.proof is not None:
            await self.check_proof_async(credential, principal)
        return principal

    # -- DPoP (RFC 9449): the proof, on every request ---------------------------------------

    def check_proof(self, credential: Credential, principal: Principal) -> None:
        """Check ``credential``'s DPoP proof against ``principal`` (its verified token's
        ``cnf.jkt``), and claim the proof's id in this process and, with a shared store,
        fleet-wide; raise :class:`InvalidDPoPProof` (or :class:`UseDPoPNonce`) when it does
        not hold. :meth:`verify_credential` calls it on every request that carries a proof.

        Args:
            credential: a token with its proof (method and URI filled in).
            principal: the token's verified principal.
        """
        replay = self._proved(credential, principal)
        store = self.store
        if store is not None:  # fleet-wide: claimed once (an outage: see _first_use)
            self._first_use(store, store.claim(_REPLAY + replay.hex(), self._window))

    async def check_proof_async(self, credential: Credential, principal: Principal) -> None:
        """Like :meth:`check_proof`, without blocking the event loop (the fleet's claim):
        :meth:`verify_credential_async` calls it, and so does the ASGI shell for a cached
        DPoP-bound token.

        Args:
            credential: a token with its proof (method and URI filled in).
            principal: the token's verified principal.
        """
        replay = self._proved(credential, principal)
        store = self.store
        if store is not None:  # fleet-wide: claimed once (an outage: see _first_use)
            self._first_use(store, await store.claim_async(_REPLAY + replay.hex(), self._window))

    def _proved(self, credential: Credential, principal: Principal) -> bytes:
        """Check the request's proof against the (verified) token's ``cnf.jkt``; the proof's
        replay key, claimed in this process."""
        proof = credential.proof
        assert proof is not None
        if self._proofs is None:
            raise InvalidDPoPProof("this resource server does not accept DPoP")
        if not proof.method or not proof.uri:
            raise InvalidDPoPProof(
                "the request's method and URI are needed to check a DPoP proof"
            ).with_context(hint="authenticate(headers, method=..., uri=...)")
        cnf = principal.claims.get("cnf")
        return self._proofs.check(
            proof, credential.value, cnf.get("jkt") if type(cnf) is dict else None
        )

    @property
    def _window(self) -> float:
        assert self._proofs is not None
        return self._proofs.window

    @staticmethod
    def _first_use(store: Store, claimed: bool | None) -> None:
        """The fleet's answer on a proof id: first use, a replay, or unknown (an outage:
        ``refuse`` answers 503, ``serve`` goes on with this process's memory)."""
        if claimed is False:
            raise InvalidDPoPProof("the proof was used before (jti)")
        if claimed is None:
            _replays_unknown(store)

    # -- the shared, pure parts ---------------------------------------------------------------

    def _cached(self, credential: Credential) -> Principal | None:
        """The cached principal for ``credential``, if any is still valid: before its binding
        (proof, certificate) is checked, so never an answer on its own.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        cache = self._cache
        key = None if cache is None else cache.key_for(credential)
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
    ) -> bool:
        """Deny a signed-out token, every token with a ``jti``, or a subject's older tokens.

        Denied credentials are purged from the cache at once and refused (401 ``revoked``) by
        every later verification, until they would have expired anyway. With a ``store``, the
        revocation is also written and published to every worker; returns whether it reached
        the store (without one, or while it is down: ``False``; it is written on reconnect).

        Args:
            token: the exact token (its ``exp`` and ``jti`` are read from it, unverified).
            jti: deny every token carrying this ``jti``.
            subject: with ``issued_before``: deny the subject's tokens issued earlier.
            issued_before: the cut-off ``iat`` for ``subject`` (default: now, on this
                server's clock; a token without ``iat`` is denied too). A token the identity
                provider issued just before the sign-out from a clock ahead of ours carries a
                later ``iat`` and survives: pass the provider's time of the sign-out when you
                have it.
            issuer: restrict the subject revocation to this issuer.
            expires_at: when the ``jti``'s tokens expire, when known.
        """
        records = self._revoke_locally(
            token,
            jti=jti,
            subject=subject,
            issued_before=issued_before,
            issuer=issuer,
            expires_at=expires_at,
        )
        if self.store is None:
            return False
        reached = [self.store.publish(record) for record in records]  # every one, then all()
        return all(reached)

    async def revoke_async(
        self,
        token: str | None = None,
        *,
        jti: str | None = None,
        subject: str | None = None,
        issued_before: float | None = None,
        issuer: str | None = None,
        expires_at: float | None = None,
    ) -> bool:
        """Like :meth:`revoke`, without blocking the event loop: the store is written through
        redis-py's asyncio client."""
        records = self._revoke_locally(
            token,
            jti=jti,
            subject=subject,
            issued_before=issued_before,
            issuer=issuer,
            expires_at=expires_at,
        )
        if self.store is None:
            return False
        reached = [await self.store.publish_async(record) for record in records]
        return all(reached)

    def _revoke_locally(
        self,
        token: str | None = None,
        *,
        jti: str | None = None,
        subject: str | None = None,
        issued_before: float | None = None,
        issuer: str | None = None,
        expires_at: float | None = None,
    ) -> list[dict[str, Any]]:
        """Apply a revocation here at once; the records to share through the store."""
        if token is None and jti is None and subject is None:
            raise TypeError("revoke() needs a token, a jti, or a subject")
        token_jti, token_exp = _revocable(token) if token is not None else (None, None)
        for name, value in (("issued_before", issued_before), ("expires_at", expires_at)):
            if value is not None and as_number(value) is None:
                raise ValueError(f"{name} must be a numeric date within ±2^53")
        with self._revocation_lock:
            self._revocations += 1
            if token is not None:
                self.denylist.revoke_token(token, token_exp)
                if token_jti is not None:  # its other spellings carry the same jti
                    self.denylist.revoke_jti(token_jti, token_exp)
            if jti is not None:
                self.denylist.revoke_jti(jti, expires_at)
            if subject is not None:
                cutoff = self._clock() if issued_before is None else issued_before
                self.denylist.revoke_subject(subject, cutoff, issuer)
            cache = self._cache
            if cache is not None:
                # the token and any re-signed spelling of it (same signing input), and what
                # the jti or subject now denies: each in O(entries it reaches).
                if token is not None:
                    key = cache.key_for(Credential("bearer", token))
                    assert key is not None  # a Bearer value always has one
                    cache.discard_token(key)
                for revoked_jti in {jti, token_jti} - {None}:
                    cache.discard_group("jti", revoked_jti)
                if subject is not None:
                    cache.discard_group("sub", subject, self.denylist.matches)
        records: list[dict[str, Any]] = []
        if self.store is None:
            return records
        if token is not None:
            until = self.denylist.until(token_exp)
            records.append({"kind": "token", "digest": token_digest(token).hex(), "until": until})
        for revoked_jti, exp in ((token_jti, token_exp), (jti, expires_at)):
            if revoked_jti is not None:
                until = self.denylist.until(exp)
                records.append({"kind": "jti", "jti": revoked_jti, "until": until})
        if subject is not None:
            cutoff = self._clock() if issued_before is None else issued_before
            records.append(
                {
                    "kind": "subject",
                    "subject": subject,
                    "issued_before": cutoff,
                    "issuer": issuer,
                    "until": self.denylist.subject_until(cutoff),
                }
            )
        return records

    def _apply_revocations(self, records: list[dict[str, Any]]) -> None:
        """Revocations from the fleet (through the store): the denylist and the cache."""
        digests: dict[bytes, float] = {}
        with self._revocation_lock:
            self._revocations += 1
            for record in records:
                if record["kind"] == "token":  # most of them: applied together
                    try:
                        digests[bytes.fromhex(record["digest"])] = float(record["until"])
                    except ValueError:
                        continue  # not a digest: a record that is not ours denies nothing
                else:
                    self._apply_revocation(record)
            self.denylist.revoke_digests(digests)
            cache = self._cache
            if cache is not None and len(cache):
                for digest in digests:
                    cache.discard_group("input", digest)

    def _apply_revocation(self, record: dict[str, Any]) -> None:
        """One revocation from the fleet (the caller holds the revocation lock)."""
        kind, until = record["kind"], float(record["until"])
        cache = self._cache
        if kind == "token":
            digest = bytes.fromhex(record["digest"])
            self.denylist.revoke_digest(digest, until)
            if cache is not None:
                cache.discard_group("input", digest)
        elif kind == "jti":
            jti = str(record["jti"])
            self.denylist.revoke_jti(jti, until)
            if cache is not None:
                cache.discard_group("jti", jti)
        elif kind == "subject":
            subject, issuer = str(record["subject"]), record.get("issuer")
            cutoff = float(record["issued_before"])
            self.denylist.revoke_subject(subject, cutoff, issuer)
            if cache is not None:
                cache.discard_group("sub", subject, self.denylist.matches)

    def _purge_cache(self) -> None:
        """After the store reloaded (or went down with ``on_unavailable="refuse"``)."""
        if self._cache is not None:
            self._cache.clear()

    def _admit(
        self,
        credential: Credential,
        principal: Principal,
        provider: Provider,
        generation: int,
        key: Key | None,
    ) -> None:
        _check_binding_shape(credential, principal.claims.get("cnf"))
        self._check_lifetime(principal)
        if self.denylist.is_revoked(credential.value, principal):
            raise RevokedToken("the token has been revoked")
        store = self.store
        if store is not None and self._unconfirmed(provider):
            error = ProviderUnavailable(retry_after=store.retry)
            error.detail = "the shared store is down: revocations cannot be confirmed"
            raise error
        with self._revocation_lock:
            # a revocation landing while we verified may not have seen this principal: recheck.
            if generation != self._revocations and self.denylist.is_revoked(
                credential.value, principal
            ):
                raise RevokedToken("the token has been revoked")
            self._remember(key, principal, provider)

    def _check_lifetime(self, principal: Principal) -> None:
        """Refuse a token living longer than ``max_token_lifetime`` (from its ``iat``, or from
        now without one): revocations whose token expiry is unknown (a subject's cut-off, a
        ``jti``) are forgotten that long after, and must outlive every token they deny."""
        expires_at = principal.expires_at
        if expires_at is None:
            return  # no expiry to judge (an API key, an answer without exp)
        now = self._clock()
        issued = as_number(principal.claims.get("iat"))
        # from iat even a little ahead of our clock (within leeway): a token living exactly
        # max_token_lifetime (Auth0's default day) from a clock ahead of ours still passes
        start = now if issued is None else issued
        if expires_at - start > self.denylist.max_token_lifetime:
            raise InvalidToken(
                "the token lives longer than this server accepts", claim="exp"
            ).with_context(
                lifetime=round(expires_at - start),
                max_token_lifetime=self.denylist.max_token_lifetime,
            )

    def _unconfirmed(self, provider: Provider) -> bool:
        """Whether ``provider``'s tokens are refused now: revocable, the store's subscription
        down, and ``on_unavailable="refuse"``."""
        store = self.store
        return (
            store is not None
            and provider.revocable
            and store.on_unavailable == "refuse"
            and not store.subscribed
        )

    def _remember(self, key: Key | None, principal: Principal, provider: Provider) -> None:
        """Cache ``principal`` under ``key`` (the credential's, ``None``: never cached)."""
        cache = self._cache
        if cache is None or key is None:
            return
        now = self._clock()
        valid_until = principal.expires_at
        ttl = provider.cache_ttl_for(principal)
        if ttl is not None:
            capped = now + ttl
            valid_until = capped if valid_until is None else min(valid_until, capped)
        for name in ("nbf", "iat"):  # accepted only thanks to leeway: verify again next time
            value = as_number(principal.claims.get(name))
            if value is not None and value > now:
                return
        cache.put(key, principal, valid_until)


def _revocable(token: Any) -> tuple[str | None, float | None]:
    """The unverified ``jti`` and ``exp`` of a token being revoked; refuse an unusable one."""
    if not isinstance(token, str):
        raise TypeError("revoke() takes the token as a string")
    if not token:
        raise ValueError("revoke() takes the token as a non-empty string")
    claims = unverified_claims(token) or {}
    exp = claims.get("exp")
    number = as_number(exp)
    if exp is not None and number is None:
        raise MalformedToken("the token's 'exp' is not a finite JSON number within ±2^53")
    jti = claims.get("jti")
    return (jti if isinstance(jti, str) and jti else None), number


def _providers(providers: Any) -> tuple[Provider, ...]:
    """The providers, validated: a list of distinct Provider objects with distinct issuers."""
    if isinstance(providers, Provider):
        raise ConfigurationError("pass the providers as a list: Authenticator([provider])")
    if isinstance(providers, str | bytes | dict) or not isinstance(providers, Iterable):
        raise ConfigurationError("providers must be a list of authgate Provider objects")
    found = tuple(providers)
    if not found:
        raise ConfigurationError("an Authenticator needs at least one provider")
    for provider in found:
        if not isinstance(provider, Provider):
            raise ConfigurationError(
                f"providers must be authgate Provider objects, not {type(provider).__name__}"
            )
    names = [p.name for p in found]
    if len(set(names)) != len(names):
        raise ConfigurationError("provider names must be unique")
    by_issuer: dict[str, list[Provider]] = {}
    for provider in found:
        if provider.issuer is not None:
            by_issuer.setdefault(provider.issuer, []).append(provider)
    for issuer, sharing in by_issuer.items():
        # one issuer, two credential kinds: JWTs verified locally, opaque tokens at its
        # endpoint (the README's advice). Anything else would route by list order: refused.
        local = [p for p in sharing if getattr(p, "verifier", None) is not None]
        remote = [p for p in sharing if p not in local]
        if len(sharing) > 1 and not (
            len(local) == 1 and len(remote) == 1 and remote[0].accepts_opaque
        ):
            raise ConfigurationError(
                f"two providers have the same issuer {issuer!r}: only one verifying its JWTs "
                "locally and one taking its opaque tokens may share it"
            )
    _check_key_prefixes([p for p in found if p.accepts_api_keys])
    return found


_OURS = frozenset({"authorization", "x-api-key", "cookie", "dpop"})


def _token_header(providers: tuple[Provider, ...]) -> str | None:
    """The provider header tokens may arrive in: at most one, a lower-case header name."""
    headers = {p.token_header for p in providers if p.token_header is not None}
    if len(headers) > 1:
        raise ConfigurationError(
            "at most one provider header is supported: " + ", ".join(sorted(headers))
        )
    header = next(iter(headers), None)
    if header is not None and (
        not isinstance(header, str)
        or re.fullmatch(r"[a-z0-9][a-z0-9-]*", header) is None
        or header in _OURS
    ):
        raise ConfigurationError(
            "a provider's token_header must be a lower-case header name other than "
            "authorization, x-api-key, cookie and dpop"
        )
    return header


_BINDINGS = frozenset({"jkt", "x5t#S256"})


def _replays_unknown(store: Store) -> None:
    """The store cannot say whether a proof was used elsewhere: ``refuse`` answers 503,
    ``serve`` goes on with this process's memory."""
    if store.on_unavailable == "refuse":
        error = ProviderUnavailable(retry_after=store.retry)
        error.detail = "the shared store is down: DPoP proof replays cannot be checked"
        raise error


def _check_binding_shape(credential: Credential, cnf: Any) -> None:
    """Whether this request can prove the token's binding (before it is cached): a DPoP key
    needs a proof (RFC 9449 §7.2), a certificate a client certificate (RFC 8705 §3); a
    binding authgate cannot check refuses the token."""
    if credential.proof is not None and not (type(cnf) is dict and isinstance(cnf.get("jkt"), str)):
        raise InvalidDPoPProof("the token is not bound to a DPoP key (no cnf.jkt)")
    if cnf is None:
        return
    if type(cnf) is not dict or not cnf or not _BINDINGS.issuperset(cnf):
        raise UnverifiedBinding("the token is bound in a way authgate cannot check (cnf)")
    if "jkt" in cnf and credential.proof is None:
        raise UnverifiedBinding()
    if "x5t#S256" in cnf and credential.certificate is None:
        raise UnverifiedBinding(
            "the token is bound to a client certificate and the request presents none"
            " (or no client_certificates source is configured)"
        )


def _check_certificate(certificate: str | None, principal: Principal) -> None:
    """A certificate-bound token's thumbprint against the request's certificate, on every
    request: a token bound to a key and a certificate is cached under its DPoP key, which a
    request without the certificate finds too."""
    cnf = principal.claims.get("cnf")
    bound = cnf.get("x5t#S256") if type(cnf) is dict else None
    if bound is None:
        return
    if certificate is None:
        raise UnverifiedBinding(
            "the token is bound to a client certificate and the request presents none"
        )
    if not (isinstance(bound, str) and hmac.compare_digest(bound.encode(), certificate.encode())):
        raise UnverifiedBinding("the token is bound to another client certificate")


def _check_key_prefixes(providers: list[Provider]) -> None:
    """Several API-key providers route by prefix: each needs its own, none a prefix of
    another's (else one ring's keys would always reach the other and be refused)."""
    if len(providers) < 2:
        return
    for provider in providers:
        if not provider.api_key_prefixes:
            raise ConfigurationError(
                f"several providers take API keys: give {provider.name!r} key prefixes "
                "(APIKeyRing(prefixes=...)) so x-api-key values can be routed"
            )
    owned = [(prefix, p.name) for p in providers for prefix in p.api_key_prefixes]
    for prefix, name in owned:
        for other, other_name in owned:
            if other_name != name and other.startswith(prefix):
                raise ConfigurationError(
                    f"API-key prefixes overlap: {prefix!r} ({name}) and {other!r} "
                    f"({other_name}); a key would reach the wrong provider"
                )
