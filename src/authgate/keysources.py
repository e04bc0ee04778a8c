"""Remote key sources: a JWKS URL, or OIDC discovery, behind one fetch policy.

The policy (learned from Envoy, panva/jose, keyfunc and PyJWT's failures):

- a fetched set is fresh for ``max_age`` (default 10 min), or the response's
  ``Cache-Control: max-age`` clamped to ``[min_age, max_age_cap]`` (1 min to 24 h);
- it is refreshed in the background ahead of expiry, so no request waits on a routine refresh;
- one fetch is in flight per source, however many requests wait for it;
- a ``kid`` that is not in the set triggers a refetch at most once per ``cooldown`` (30 s),
  globally, including while no set was ever fetched; a miss inside the cooldown fails fast;
  kids confirmed absent after a fetch are remembered until the next fetch;
- when a fetch fails, the last good set is served until ``max_stale`` (1 h) past its expiry,
  then :class:`~authgate.errors.KeySourceUnavailable` is raised;
- single keys that cannot be parsed or are unsafe (RSA < 2048 bits, ``use: enc``, private
  members, symmetric keys) are skipped, never the whole set;
- every fetch has a total timeout (5 s) and a body cap (1 MiB), follows no redirects, and
  speaks ``https`` only, except to loopback hosts.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._cache import Memo
from ._clients import Clients
from ._codec import sha256
from ._config import non_negative, positive
from ._exchange import Plan, Request, Response, UpstreamError
from ._flight import SingleFlight
from ._json import as_number
from ._log import info, safe_url, warning
from ._upstream import MAX_BODY, Upstream, allowed_http, check_url
from ._upstream import upstream_of as _upstream_of
from .errors import ConfigurationError, KeySourceUnavailable
from .events import Event, KeyFetch
from .keys import Key, KeySet, parse_certificates, parse_jwks
from .store import Store, shared_fetch, shared_fetch_async

__all__ = [
    "ALBKeySource",
    "CertificateKeySource",
    "JWKSKeySource",
    "KeyFetchPolicy",
    "OIDCKeySource",
    "RemoteKeySource",
]

LOGGER: Final = "authgate.keys"
_NOT_THERE: Final = frozenset({404, 410})  # the location is wrong, not down


_MAX_AGE = r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)"  # compiled on first use
_MAX_ABSENT_KIDS = 4096
KEY_FETCH_TIMEOUT: Final = 5.0
"""Seconds one key fetch may take unless its ``Upstream.timeout`` says otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFetchPolicy:
    """How a remote key source fetches and caches its keys; every duration in seconds.

    Args:
        max_age: freshness of a fetched set when the response names none.
        min_age: lower clamp of a response's ``Cache-Control: max-age``.
        max_age_cap: upper clamp of a response's ``Cache-Control: max-age``.
        cooldown: least time between two fetches triggered by unknown kids or failures.
        max_stale: how long past its expiry the last good set is served while fetches fail.

    How to reach the keys (timeout: :data:`KEY_FETCH_TIMEOUT`; body cap, TLS) is the source's
    :class:`Upstream`: one place for each setting.
    """

    max_age: float = 600.0
    min_age: float = 60.0
    max_age_cap: float = 86400.0
    cooldown: float = 30.0
    max_stale: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("max_age", "min_age", "max_age_cap"):
            positive(getattr(self, name), name)
        for name in ("cooldown", "max_stale"):
            non_negative(getattr(self, name), name)
        if not self.min_age <= self.max_age_cap:
            raise ConfigurationError("min_age must not exceed max_age_cap")

    def freshness(self, response: Response) -> float:
        """Seconds a set fetched with ``response`` stays fresh."""
        match = re.search(_MAX_AGE, response.headers.get("cache-control", ""), re.IGNORECASE)
        if match is None:
            return self.max_age
        return min(max(float(match.group(1)), self.min_age), self.max_age_cap)


class RemoteKeySource:
    """The fetch policy shared by remote key sources; subclasses only say what to fetch.

    Args:
        policy: the fetch and cache policy.
        upstream: how to reach the keys (its timeout, else :data:`KEY_FETCH_TIMEOUT`; its body
            cap, else 1 MiB; its clock is the source's).
    """

    def __init__(
        self,
        *,
        policy: KeyFetchPolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        if policy is not None and not isinstance(policy, KeyFetchPolicy):
            raise ConfigurationError("policy must be an authgate.KeyFetchPolicy")
        self.policy = policy or KeyFetchPolicy()
        self._http = Clients(
            (upstream or Upstream()).settings(timeout=KEY_FETCH_TIMEOUT, max_body=MAX_BODY)
        )
        self._allow_http = allowed_http(upstream)
        self._clock = _upstream_of(upstream).clock
        self._told: set[str] = set()  # configuration mistakes logged (each once)
        self._lock = threading.Lock()
        self._keyset: KeySet | None = None
        self._usable_until = 0.0
        self._refresh_at = 0.0
        self._next_fetch = float("-inf")
        self._absent: Memo[str, bool] = Memo(_MAX_ABSENT_KIDS)
        # one fetch in flight per source; its leader may be a request, a thread or a task
        self._flight: SingleFlight[None] = SingleFlight(wait=self._http.settings.timeout * 2)
        self._last_error = "no fetch has been made yet"
        self._emit: Callable[[Event], None] | None = None
        self._why = "cold"
        self._started = time.monotonic()
        self._skipped = 0
        self._stale = False
        self._store: Store | None = None
        self._via_fleet = False
        self._fetched_at = 0.0  # when our set was fetched (ours or another worker's)
        self._document: tuple[bytes, str] = (b"", "")
        self.fetches = 0
        """How many fetches this source has started (for metrics and tests)."""

    # -- what subclasses provide --------------------------------------------------------------

    def plan(self) -> Plan[tuple[KeySet, float]]:
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the keys come from, for messages."""
        raise NotImplementedError

    # -- read side: called on every verification ----------------------------------------------

    def current(self) -> KeySet | None:
        """The usable key set, or ``None`` when a blocking fetch is needed first.

        Starts a background refresh when one is due; never waits for it.
        """
        keyset = self._keyset
        if keyset is None:
            return None
        now = self._clock()
        if now >= self._refresh_at:
            if now > self._usable_until:
                return None
            self._refresh_in_background()
        return keyset

    def may_refetch(self, kid: str | None) -> bool:
        """Whether an unknown ``kid`` may trigger a fetch now (cooldown and absent kids)."""
        if kid is not None and kid in self._absent:
            return False
        return self._flight.in_flight(_FETCH) or self._clock() >= self._next_fetch

    def mark_absent(self, kid: str | None) -> None:
        """Remember that ``kid`` is not in the current set, until the next fetch."""
        # only a set actually fetched can confirm a kid absent: not one kept through a failure
        if kid is not None and not self._last_error:
            self._absent.put(kid, True)

    def unavailable(self) -> KeySourceUnavailable:
        """The error for 'no usable keys', with a ``retry_after`` hint.

        Its message is generic (clients see it); its ``detail`` names the location, without
        userinfo or query, and the last failure, for the operator.
        """
        wait = max(1.0, self._next_fetch - self._clock())
        error = KeySourceUnavailable(retry_after=min(wait, self.policy.cooldown or 1.0))
        error.detail = f"keys at {safe_url(self.location)}: {self._last_error}"
        return error

    # -- connections --------------------------------------------------------------------------

    def close(self) -> None:
        """Close this source's pooled connections (the next fetch opens new ones)."""
        self._http.close()

    async def aclose(self) -> None:
        """Like :meth:`close`, awaiting this event loop's connections."""
        await self._http.aclose()

    # -- fetching -----------------------------------------------------------------------------

    def refresh(self, kid: str | None = None) -> None:
        """Fetch now unless the cooldown forbids it, joining a fetch already in flight.

        Args:
            kid: the key id the token asked for (a source serving one document ignores it).
        """
        self._flight.do(_FETCH, self._fetch_sync, admit=self._admit)

    async def refresh_async(self, kid: str | None = None) -> None:
        """Like :meth:`refresh`, without blocking the event loop.

        Args:
            kid: the key id the token asked for.
        """
        await self._flight.do_async(_FETCH, self._fetch_async, admit=self._admit)

    def _refresh_in_background(self) -> None:
        self._flight.start(
            _FETCH, self._fetch_sync, self._fetch_async, admit=lambda: self._admit(ahead=True)
        )

    def observe(self, emit: Callable[[Event], None]) -> None:
        """Report each fetch as a :class:`~authgate.events.KeyFetch` to ``emit``.

        Args:
            emit: the authenticator's event dispatcher.
        """
        self._emit = emit

    def _admit(self, *, ahead: bool = False) -> bool:
        """Whether a new fetch may start now (asked under the flight's lock): the cooldown."""
        with self._lock:
            now = self._clock()
            if now < self._next_fetch:
                return False
            if ahead:
                self._why = "refresh_ahead"
            elif self._keyset is None:
                self._why = "cold"
            elif now > self._usable_until:
                self._why = "expired"
            else:
                self._why = "unknown_kid"  # the set is usable: a token named a key it lacks
            self._started = time.monotonic()
            self._next_fetch = now + self.policy.cooldown
            self._postpone_refresh(now)
            self.fetches += 1
            return True

    def _postpone_refresh(self, now: float) -> None:
        # Never past the staleness bound: current() relies on refresh_at <= usable_until.
        later = max(self._refresh_at, now + self.policy.cooldown)
        self._refresh_at = min(later, self._usable_until)

    # Any exception ends the fetch as a failed one: a bug or a hostile answer must never
    # leave the source "in flight" (or the cooldown unstarted) until a restart.

    def _fetch_sync(self) -> None:
        try:
            outcome: tuple[KeySet, float] | UpstreamError | None = self._from_fleet()
            if outcome is None:
                outcome = self._http.run(self.plan())
        except Exception as exc:
            outcome = _failure(exc)
        fresh_for = self._finish(outcome)
        store = self._store
        if store is not None and fresh_for is not None:
            document, ttl = self._shared_document(), fresh_for + self.policy.max_stale
            store.set_json(self._fleet_name(), document, ttl)

    async def _fetch_async(self) -> None:

        try:
            outcome: tuple[KeySet, float] | UpstreamError | None = await self._from_fleet_async()
            if outcome is None:
                outcome = await self._http.run_async(self.plan())
        except Exception as exc:
            outcome = _failure(exc)
        except BaseException:  # cancelled with its loop: a failed fetch, then propagate
            self._finish(UpstreamError("the fetch was cancelled"))
            raise
        fresh_for = self._finish(outcome)
        store = self._store
        if store is not None and fresh_for is not None:
            document, ttl = self._shared_document(), fresh_for + self.policy.max_stale
            await store.set_json_async(self._fleet_name(), document, ttl)

    # -- the fleet: at most one fetch per cooldown per source, whatever the workers ------------

    def use_store(self, store: Store) -> None:
        """Share fetched key sets with the other workers through ``store``.

        Args:
            store: an :class:`authgate.redis.RedisStore`.
        """
        self._store = store

    def _from_fleet(self) -> tuple[KeySet, float] | UpstreamError | None:
        """A key set another worker fetched more recently than ours, or ``None`` when this
        worker should fetch (it took the fleet's lock for this source, one per cooldown); an
        ``UpstreamError`` when another worker holds the lock and this one keeps its keys."""
        store = self._store
        if store is None:
            return None
        self._via_fleet = False
        found, locked_out = shared_fetch(
            store, self._fleet_name(), self._newer, **self._fleet_lock()
        )
        return self._taken(found, locked_out)

    async def _from_fleet_async(self) -> tuple[KeySet, float] | UpstreamError | None:
        """Like :meth:`_from_fleet`, on the store's asyncio client."""
        store = self._store
        if store is None:
            return None
        self._via_fleet = False
        found, locked_out = await shared_fetch_async(
            store, self._fleet_name(), self._newer, **self._fleet_lock()
        )
        return self._taken(found, locked_out)

    def _fleet_lock(self) -> dict[str, float]:
        """One fetch per cooldown fleet-wide; a locked-out worker waits at most 2 s."""
        return {
            "lock_ttl": max(self.policy.cooldown, 1.0),
            "wait": min(self._http.settings.timeout, 2.0),
        }

    def _fleet_name(self) -> str:
        return "keys:" + sha256(self.location).hex()

    def _taken(
        self, found: dict[str, Any] | None, locked_out: bool
    ) -> tuple[KeySet, float] | UpstreamError | None:
        """The set another worker stored; a cooldown when it holds the lock and we have keys;
        ``None``: fetch."""
        if found is None:
            if locked_out and self._keyset is not None:
                return _FleetCooldown("another worker fetched these keys within the cooldown")
            return None
        headers = {"cache-control": str(found.get("cache_control", ""))}
        import httpx

        try:
            keyset, fresh_for = self._keyset_from(
                Response(200, httpx.Headers(headers), str(found["body"]).encode())
            )
        except UpstreamError:  # an unusable shared set: ask the identity provider
            return None
        # fresh from when it was fetched, not from now: a record written back into Redis
        # after the identity provider retired a key in it must not serve that key again
        fetched_at = float(found["fetched_at"])
        fresh_for -= max(0.0, self._clock() - fetched_at)
        if fresh_for <= 0:
            return None
        self._via_fleet = True
        self._fetched_at = fetched_at  # never taken again, once ours
        return keyset, fresh_for

    def _newer(self, document: Any) -> dict[str, Any] | None:
        if not isinstance(document, dict) or not isinstance(document.get("body"), str):
            return None
        fetched_at = as_number(document.get("fetched_at"))
        if fetched_at is None or fetched_at <= self._fetched_at:
            return None
        return document

    def _finish(self, outcome: tuple[KeySet, float] | UpstreamError) -> float | None:
        """Take a fetch's outcome; the freshness to share it with, when it is ours to share."""
        where = safe_url(self.location)
        publish: float | None = None
        with self._lock:
            now = self._clock()
            why, seconds = self._why, time.monotonic() - self._started
            if isinstance(outcome, _FleetCooldown):  # not a failure: the fleet's cooldown
                self._postpone_refresh(now)
                return None
            if isinstance(outcome, UpstreamError):
                self._last_error = outcome.message
                self._postpone_refresh(now)
                event = KeyFetch(where, why, "failed", seconds, error=outcome.message)
                stale = self._keyset is not None and now <= self._usable_until
                if stale and not self._stale:  # once, when we start serving old keys
                    left = self._usable_until - now
                    warning(LOGGER, "serving the keys last fetched from %s for up to %.0f s "
                            "more while fetches fail", where, left)  # fmt: skip
                self._stale = stale
                warning(LOGGER, "key fetch from %s (%s) failed: %s", where, why, outcome.message)
            else:
                keyset, fresh_for = outcome
                self._keyset = keyset
                self._absent.clear()
                self._refresh_at = now + fresh_for - min(60.0, fresh_for / 5)
                self._usable_until = now + fresh_for + self.policy.max_stale
                self._last_error = ""
                if self._stale:
                    info(LOGGER, "keys from %s are fresh again", where)
                self._stale = False
                if not self._via_fleet:
                    self._fetched_at = self._clock()
                    publish = fresh_for
                where += " (shared by another worker)" if self._via_fleet else ""
                kids = ", ".join(sorted(keyset.kids())[:10]) or "no kid"
                info(LOGGER, "keys fetched from %s (%s) in %.0f ms: %d usable (%s), %d skipped, "
                     "fresh for %.0f s", where, why, seconds * 1000, len(keyset), kids,
                     self._skipped, fresh_for)  # fmt: skip
                event = KeyFetch(where, why, "ok", seconds, len(keyset), self._skipped)
        if self._emit is not None:
            self._emit(event)
        return publish

    def _shared_document(self) -> dict[str, Any]:
        """The key set just fetched, as stored for the other workers (public keys only)."""
        body, cache_control = self._document
        return {
            "body": body.decode("utf-8", "replace"),
            "cache_control": cache_control,
            "fetched_at": self._fetched_at,
        }

    def _misconfigured(self, message: str) -> None:
        """A location that says "not here" is a configuration mistake, not an outage: logged
        once at ERROR, naming what to check (clients still get 503)."""
        if message not in self._told:
            self._told.add(message)
            from ._log import error

            error(LOGGER, "%s", message)

    def _keyset_from(self, response: Response) -> tuple[KeySet, float]:
        if response.status in _NOT_THERE:
            self._misconfigured(
                f"the key set at {safe_url(self.location)} answered HTTP {response.status}: "
                "check the JWKS URL (or the issuer, for a discovered one)"
            )
        if response.status != 200:
            raise UpstreamError(f"the key endpoint answered HTTP {response.status}")
        try:
            keys, skipped = self.parse(response.json())
        except ConfigurationError as exc:
            raise UpstreamError(exc.message) from exc
        if skipped:  # one summary line per fetch, however many keys were skipped
            reasons = Counter(skipped).most_common(5)
            summary = "; ".join(f"{count} x {reason}" for reason, count in reasons)
            warning(
                LOGGER,
                "skipped %d of %d keys from %s: %s",
                len(skipped),
                len(skipped) + len(keys),
                safe_url(self.location),
                summary,
            )
        self._skipped = len(skipped)
        self._document = (response.body, response.headers.get("cache-control", ""))
        if skipped and not keys:
            raise UpstreamError("the key document holds no usable key")
        return KeySet(keys), self.policy.freshness(response)

    def parse(self, document: Any) -> tuple[list[Key], list[str]]:
        """The usable public keys of a fetched document, and a reason for each key skipped
        (a subclass for another format overrides it). Secrets are never taken from a URL.

        Args:
            document: the fetched JSON document.
        """
        return parse_jwks(document, allow_secret=False)


_JWKS_ACCEPT = {"accept": "application/jwk-set+json, application/json"}


_FETCH: Final = "fetch"


class _FleetCooldown(UpstreamError):
    """Another worker fetched this source within the cooldown: keep the keys we have."""


def _failure(exc: Exception) -> UpstreamError:
    """Any exception of a fetch, as the UpstreamError it counts as."""
    if isinstance(exc, UpstreamError):
        return exc
    return UpstreamError(f"the fetch failed ({type(exc).__name__})")


class JWKSKeySource(RemoteKeySource):
    """Keys from a JWKS URL, fetched and cached by :class:`KeyFetchPolicy`.

    Args:
        url: the JWKS document's URL (``https``, or ``http`` on loopback).
        policy: the fetch and cache policy.
        upstream: how to reach the keys (timeouts, transports).
    """

    def __init__(
        self,
        url: str,
        *,
        policy: KeyFetchPolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.url = check_url(url, f"the {self.document} URL", allowed_http(upstream))
        super().__init__(policy=policy, upstream=_upstream_of(upstream))

    document = "JWKS"
    """What the URL serves, as errors name it."""

    def __repr__(self) -> str:
        return f"JWKSKeySource({self.url!r})"

    @property
    def location(self) -> str:
        return self.url

    def plan(self) -> Plan[tuple[KeySet, float]]:
        response = yield Request("GET", self.url, _JWKS_ACCEPT)
        return self._keyset_from(response)


class CertificateKeySource(JWKSKeySource):
    """Keys from a certificate map URL: ``{kid: PEM certificate}``, the format Google and
    Firebase publish (``https://www.googleapis.com/robot/v1/metadata/x509/...``), fetched and
    cached as a JWKS is. Each certificate's public key is used under its kid (its validity
    dates are not checked: the map is the trust, as Google documents); unusable entries are
    skipped.

    Args:
        url: the map's URL (``https``, or ``http`` on loopback).
        policy: the fetch and cache policy.
        upstream: how to reach the keys (timeouts, transports).
    """

    document = "certificate map"

    def __repr__(self) -> str:
        return f"CertificateKeySource({self.url!r})"

    def parse(self, document: Any) -> tuple[list[Key], list[str]]:
        return parse_certificates(document)


class OIDCKeySource(RemoteKeySource):
    """Keys found by OIDC discovery: ``{issuer}/.well-known/openid-configuration`` → ``jwks_uri``.

    The discovery document's ``issuer`` must equal the configured one (OIDC Discovery §4.3).

    Args:
        issuer: the issuer URL (``https``, or ``http`` on loopback).
        policy: the fetch and cache policy.
        upstream: how to reach the keys (timeouts, transports).
    """

    def __init__(
        self,
        issuer: str,
        *,
        policy: KeyFetchPolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.issuer = check_url(issuer, "the issuer", allowed_http(upstream))
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.jwks_uri: str | None = None
        super().__init__(policy=policy, upstream=_upstream_of(upstream))

    def __repr__(self) -> str:
        return f"OIDCKeySource({self.issuer!r})"

    @property
    def location(self) -> str:
        return self.jwks_uri or self.discovery_url

    def plan(self) -> Plan[tuple[KeySet, float]]:
        jwks_uri = self.jwks_uri
        if jwks_uri is None:
            response = yield Request("GET", self.discovery_url, {"accept": "application/json"})
            jwks_uri = self._jwks_uri_from(response)
        # Until this fetch succeeds, the next one discovers again: the keys may have moved, and
        # a transport error (which never returns here) must not pin a dead location.
        self.jwks_uri = None
        response = yield Request("GET", jwks_uri, _JWKS_ACCEPT)
        keys = self._keyset_from(response)
        self.jwks_uri = jwks_uri
        return keys

    def _jwks_uri_from(self, response: Response) -> str:
        if response.status != 200:
            if response.status in _NOT_THERE:
                self._misconfigured(
                    f"the discovery document at {safe_url(self.discovery_url)} answered HTTP "
                    f"{response.status}: check the issuer URL; it must be exactly the 'iss' your "
                    "tokens carry, discovery being at {issuer}/.well-known/openid-configuration"
                )
            raise UpstreamError(f"the discovery endpoint answered HTTP {response.status}")
        document = response.json()
        if not isinstance(document, dict):
            raise UpstreamError("the discovery document is not a JSON object")
        if document.get("issuer") != self.issuer:
            named = document.get("issuer")
            self._misconfigured(
                f"the discovery document at {safe_url(self.discovery_url)} names the issuer "
                f"{str(named)[:200]!r}, not the configured {self.issuer!r}: configure the "
                "issuer exactly as the provider names it (a trailing slash counts)"
            )
            raise UpstreamError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise UpstreamError("the discovery document has no jwks_uri")
        try:
            return check_url(jwks_uri, "the discovered jwks_uri", self._allow_http)
        except ConfigurationError as exc:
            raise UpstreamError(exc.message) from exc


_ALB_KID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ALB_MAX_KEYS: Final = 16  # the most recent kids kept; ALB signs with one at a time
_ALB_BURST: Final = 8  # distinct kids fetched per cooldown, at most
_ALB_GOVCLOUD: Final = "https://s3-{region}.amazonaws.com/aws-elb-public-keys-prod-{region}"


def alb_keys_url(region: str) -> str:
    """Where AWS publishes the keys an Application Load Balancer of ``region`` signs with
    ("Authenticate users using an Application Load Balancer", Elastic Load Balancing docs):
    ``https://public-keys.auth.elb.{region}.amazonaws.com``, or an S3 bucket in GovCloud.

    Args:
        region: the load balancer's region (``eu-west-1``).
    """
    if not isinstance(region, str) or re.fullmatch(r"[a-z]{2}(?:-gov)?-[a-z]+-\d", region) is None:
        raise ConfigurationError(f"{str(region)[:40]!r} is not an AWS region such as eu-west-1")
    if "-gov-" in region:
        return _ALB_GOVCLOUD.format(region=region)
    return f"https://public-keys.auth.elb.{region}.amazonaws.com"


class ALBKeySource(RemoteKeySource):
    """The keys an AWS Application Load Balancer signs its user-claims tokens with: one PEM
    public key (ES256, P-256) per key id at ``{url}/{kid}``, fetched when a token names a kid
    not yet held. A key id's key never changes, so held keys never go stale; the most recent
    16 are kept.

    A kid must be a UUID (what ALB uses) to be fetched; each is fetched at most once per
    ``cooldown``, and at most 8 distinct kids per ``cooldown``: forged tokens naming random
    kids cannot make this source fetch without bound. A kid the endpoint does not have (HTTP
    403 or 404) is a forged or foreign token (401), not an outage; a failed fetch is a 503.
    Keys are fetched by each worker (the fleet's store is not used: there is one small key per
    kid).

    Args:
        url: the key endpoint (:func:`alb_keys_url` of the load balancer's region).
        policy: the fetch policy (its ``cooldown``).
        upstream: how to reach the keys.
    """

    document = "ALB public key"

    def __init__(
        self,
        url: str,
        *,
        policy: KeyFetchPolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.url = check_url(url, "the ALB key URL", allowed_http(upstream)).rstrip("/")
        super().__init__(policy=policy, upstream=_upstream_of(upstream))
        self._keys: dict[str, Key] = {}
        self._keyset = KeySet(())
        self._tried: Memo[str, float] = Memo(_MAX_ABSENT_KIDS)  # kid -> when last fetched
        self._failed: Memo[str, bool] = Memo(_MAX_ABSENT_KIDS)  # kids whose fetch failed
        self._recent: list[float] = []  # when the last _ALB_BURST fetches started

    def __repr__(self) -> str:
        return f"ALBKeySource({self.url!r})"

    @property
    def location(self) -> str:
        return self.url

    def current(self) -> KeySet | None:
        return self._keyset  # a kid's key never changes: nothing to refresh

    def may_refetch(self, kid: str | None) -> bool:
        return kid is not None and _ALB_KID.fullmatch(kid) is not None and self._may_fetch(kid)

    def mark_absent(self, kid: str | None) -> None:
        pass  # every kid is fetched at most once per cooldown (see _may_fetch)

    def use_store(self, store: Store) -> None:
        pass  # one small document per kid: each worker fetches its own

    def _may_fetch(self, kid: str) -> bool:
        now = self._clock()
        last = self._tried.get(kid)
        if last is not None and now < last + self.policy.cooldown:
            return False
        recent = self._recent
        return len(recent) < _ALB_BURST or now >= recent[0] + self.policy.cooldown

    def _admit_kid(self, kid: str) -> bool:
        with self._lock:
            if not self.may_refetch(kid):
                return False
            now = self._clock()
            self._tried.put(kid, now)
            self._recent = [*self._recent, now][-_ALB_BURST:]
            self._why = "cold" if not self._keys else "unknown_kid"
            self._started = time.monotonic()
            self._next_fetch = now + self.policy.cooldown
            self.fetches += 1
            return True

    def refresh(self, kid: str | None = None) -> None:
        if kid is None:
            return
        self._flight.do(
            kid, lambda: self._settle(kid, self._run(kid)), admit=lambda: self._admit_kid(kid)
        )
        self._raise_if_failed(kid)

    async def refresh_async(self, kid: str | None = None) -> None:
        if kid is None:
            return

        async def fetch() -> None:
            try:
                outcome: Key | UpstreamError | None = await self._http.run_async(self._plan(kid))
            except Exception as exc:
                outcome = _failure(exc)
            self._settle(kid, outcome)

        await self._flight.do_async(kid, fetch, admit=lambda: self._admit_kid(kid))
        self._raise_if_failed(kid)

    def _run(self, kid: str) -> Key | UpstreamError | None:
        try:
            return self._http.run(self._plan(kid))
        except Exception as exc:
            return _failure(exc)

    def _raise_if_failed(self, kid: str) -> None:
        if self._failed.get(kid) and kid not in self._keys:
            raise self.unavailable()

    def _plan(self, kid: str) -> Plan[Key | None]:
        response = yield Request("GET", f"{self.url}/{kid}", _PEM_ACCEPT)
        if response.status in (403, 404):  # S3 answers 403 for a missing object
            return None
        if response.status != 200:
            raise UpstreamError(f"the ALB key endpoint answered HTTP {response.status}")
        return _alb_key(kid, response.body)

    def _settle(self, kid: str, outcome: Key | UpstreamError | None) -> None:
        where = safe_url(self.url)
        seconds = time.monotonic() - self._started
        with self._lock:
            if isinstance(outcome, UpstreamError):
                self._failed.put(kid, True)
                self._last_error = outcome.message
                event = KeyFetch(where, self._why, "failed", seconds, error=outcome.message)
                warning(LOGGER, "ALB key fetch from %s failed: %s", where, outcome.message)
            else:
                self._failed.put(kid, False)
                self._last_error = ""
                if outcome is not None:
                    self._keys[kid] = outcome
                    while len(self._keys) > _ALB_MAX_KEYS:
                        del self._keys[next(iter(self._keys))]
                    self._keyset = KeySet(self._keys.values())
                    info(LOGGER, "ALB key %s fetched from %s in %.0f ms", kid, where,
                         seconds * 1000)  # fmt: skip
                else:
                    info(LOGGER, "no ALB key %s at %s (a forged or foreign token)", kid, where)
                event = KeyFetch(where, self._why, "ok", seconds, len(self._keys), 0)
        if self._emit is not None:
            self._emit(event)


_PEM_ACCEPT: Final = {"accept": "application/x-pem-file, text/plain, */*"}


def _alb_key(kid: str, body: bytes) -> Key:
    """The P-256 public key of an ALB key file, or an UpstreamError naming what is wrong."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        public = serialization.load_pem_public_key(body)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UpstreamError(
            "the ALB key endpoint answered something other than a PEM public key"
        ) from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise UpstreamError("the ALB key is not a P-256 (ES256) public key")
    return Key(public, kid=kid, alg="ES256")
