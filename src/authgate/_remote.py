"""The one remote-verification client: cache, single-flight, 429, breaker; sync and async.

Every provider endpoint call goes through :class:`RemoteClient`. Its policy:

- results are cached: acceptances for ``success_ttl`` (30 s) and never past the token's
  ``exp``; definitive rejections (401 and the like) for ``failure_ttl`` (5 s);
- identical concurrent tokens make one upstream call (single-flight);
- a 429 is answered 503 with the upstream's ``Retry-After``, and no call is made until it
  passes (we do not retry into the limit);
- after ``breaker_threshold`` (5) consecutive upstream failures the breaker opens for
  ``breaker_cooldown`` (15 s): answers are a fast 503; the first call after it is a trial;
- our outage is never the client's 401: upstream failures are :class:`ProviderUnavailable`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ._cache import Expiring
from ._clients import Clients
from ._codec import sha256
from ._config import non_negative, size
from ._exchange import Plan, Response, UpstreamError
from ._flight import SingleFlight
from ._json import as_number
from ._log import info, upstream_summary, warning
from ._upstream import MAX_BODY, Upstream
from .errors import AuthGateError, ConfigurationError, InvalidToken, ProviderUnavailable
from .events import BreakerChange, Event, RemoteCall
from .store import Store, shared_fetch, shared_fetch_async

__all__ = ["RemoteClient", "RemotePolicy", "retry_after_of", "upstream_error"]

LOGGER: Final = "authgate.remote"
VERIFY_TIMEOUT: Final = 3.0
"""Seconds one verification call may take unless its ``Upstream.timeout`` says otherwise."""


Claims = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RemotePolicy:
    """How a provider's verification endpoint is called; durations in seconds.

    How to reach it (timeout, body cap, TLS) is the provider's :class:`Upstream`: one place
    for each setting.

    Args:
        success_ttl: how long an acceptance is cached (never past the token's ``exp``).
        failure_ttl: how long a definitive rejection is cached.
        breaker_threshold: consecutive upstream failures that open the breaker.
        breaker_cooldown: how long the breaker stays open.
        cache_size: the most results cached.
    """

    success_ttl: float = 30.0
    failure_ttl: float = 5.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 15.0
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        for name in ("success_ttl", "failure_ttl", "breaker_cooldown"):
            non_negative(getattr(self, name), name)
        for name in ("breaker_threshold", "cache_size"):
            size(getattr(self, name), name, minimum=1)


def retry_after_of(response: Response, default: float = 5.0) -> float:
    """The ``Retry-After`` of ``response`` in seconds (delta-seconds or an HTTP date).

    Args:
        response: the upstream response.
        default: used when the header is absent or unreadable.
    """
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(min(int(value), 3600))
    import email.utils  # rarely needed: not at import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    return max(0.0, min(when.timestamp() - time.time(), 3600.0))


def upstream_error(response: Response, what: str) -> UpstreamError:
    """The :class:`UpstreamError` for an answer that is neither an acceptance nor a rejection.

    Args:
        response: the upstream response.
        what: the endpoint, for messages.
    """
    if response.status == 429:
        error = UpstreamError(
            f"{what} is rate-limiting us", status=429, retry_after=retry_after_of(response)
        )
    else:
        error = UpstreamError(f"{what} answered HTTP {response.status}", status=response.status)
    error.detail = _error_detail(response)
    return error


def _error_detail(response: Response) -> str:
    """The upstream's own words from a ``{statusCode, error, message}`` body, for our logs only."""
    try:
        body = response.json()
    except UpstreamError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k])[:200] for k in ("error", "message") if isinstance(body.get(k), str)]
    return ": ".join(parts)


class RemoteClient:
    """Call one verification endpoint under :class:`RemotePolicy`.

    Args:
        name: the provider's name, for messages.
        plan: builds the exchange for a token: yields requests, returns claims, or raises
            a definitive ``AuthGateError`` (rejection) or ``UpstreamError`` (outage).
        expires_at: reads the expiry from accepted claims (``exp`` by default).
        policy: the call policy.
        upstream: how to reach the endpoint (timeout: :data:`VERIFY_TIMEOUT` unless it names
            one; body cap: 1 MiB unless it names one).
        clock: returns the current time.
        secrets: our own secrets this client sends (redacted from any upstream text logged).
    """

    def __init__(
        self,
        name: str,
        plan: Callable[[str], Plan[Claims]],
        *,
        expires_at: Callable[[Claims], float | None] | None = None,
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
        clock: Callable[[], float] = time.time,
        secrets: Iterable[str] = (),
    ) -> None:
        if policy is not None and not isinstance(policy, RemotePolicy):
            raise ConfigurationError("policy must be an authgate.RemotePolicy")
        self.name = name
        self.policy = policy = policy or RemotePolicy()
        self._plan = plan
        self._expires_at = expires_at or _exp_claim
        self._clock = clock
        self._secrets = tuple(secret for secret in secrets if secret)
        self._http = Clients(
            (upstream or Upstream()).settings(timeout=VERIFY_TIMEOUT, max_body=MAX_BODY)
        )
        self._results: Expiring[bytes, Claims | AuthGateError] = Expiring(policy.cache_size, clock)
        self._lock = threading.Lock()
        self._flight: SingleFlight[Claims] = SingleFlight(
            detached=False,  # one verification per token: its waiters can lead again
            wait=self._http.settings.timeout * 2,
            timed_out=lambda: _unavailable(
                f"{name}: the verification in flight did not finish in time",
                self._http.settings.timeout,
            ),
        )
        self._failures = 0
        self._open_until = 0.0
        self._blocked_until = 0.0
        self._emit: Callable[[Event], None] | None = None
        self._store: Store | None = None
        self.upstream_calls = 0
        """How many upstream calls were made (for metrics and tests)."""

    def verify(self, token: str) -> Claims:
        """The claims the endpoint vouches for; raise a rejection or :class:`ProviderUnavailable`.

        Args:
            token: the credential to verify.
        """
        key = _key(token)
        cached = self._before(key)
        if cached is not None:
            return cached
        # the leader looks again: a flight that settled between our look and now left its
        # result behind, and must not be followed by a second call
        claims = self._flight.do(key, lambda: self._before(key) or self._exchange_sync(key, token))
        assert claims is not None  # no admission rule: a flight always runs or raises
        return claims

    async def _lead_async(self, key: bytes, token: str) -> Claims:
        """The async flight's leader: a result left by a flight just settled, else the call."""
        return self._before(key) or await self._exchange_async(key, token)

    async def verify_async(self, token: str) -> Claims:
        """Like :meth:`verify`, without blocking the event loop.

        Args:
            token: the credential to verify.
        """
        key = _key(token)
        cached = self._before(key)
        if cached is not None:
            return cached
        claims = await self._flight.do_async(key, lambda: self._lead_async(key, token))
        assert claims is not None  # no admission rule: a flight always runs or raises
        return claims

    def observe(self, emit: Callable[[Event], None]) -> None:
        """Report each call and breaker change to ``emit``.

        Args:
            emit: the authenticator's event dispatcher.
        """
        self._emit = emit

    @property
    def breaker_open(self) -> bool:
        """Whether the breaker is open now (calls are refused with 503 without trying)."""
        return self._failures >= self.policy.breaker_threshold and self._clock() < self._open_until

    def close(self) -> None:
        """Close the pooled connections to the endpoint (the next call opens new ones)."""
        self._http.close()

    async def aclose(self) -> None:
        """Like :meth:`close`, awaiting this event loop's connections."""
        await self._http.aclose()

    # -- the two I/O calls --------------------------------------------------------------------

    def _exchange_sync(self, key: bytes, token: str) -> Claims:
        shared = self._from_fleet(key)
        if shared is not None:
            return shared
        started = self._count_call()
        try:
            claims = self._http.run(self._plan(token))
        except (AuthGateError, UpstreamError) as exc:
            raise self._failed(key, exc, token, started) from None
        claims, deadline = self._accepted(key, claims, started)
        self._share(key, claims, deadline)
        return claims

    async def _exchange_async(self, key: bytes, token: str) -> Claims:

        if self._store is not None:
            shared = await self._from_fleet_async(key)
            if shared is not None:
                return shared
        started = self._count_call()
        try:
            claims = await self._http.run_async(self._plan(token))
        except (AuthGateError, UpstreamError) as exc:
            raise self._failed(key, exc, token, started) from None
        claims, deadline = self._accepted(key, claims, started)
        sharing = self._shared(key, claims, deadline)
        if sharing is not None and self._store is not None:
            await self._store.set_json_async(*sharing)
        return claims

    # -- the fleet: one upstream call per new token, whatever the number of workers ----------

    def use_store(self, store: Store) -> None:
        """Share accepted results with the other workers through ``store``.

        Args:
            store: an :class:`authgate.redis.RedisStore`.
        """
        self._store = store

    def _fleet_name(self, key: bytes) -> str:
        return f"rr:{self.name}:{key.hex()}"

    def _from_fleet(self, key: bytes) -> Claims | None:
        """A result another worker stored, or ``None`` when this worker should call: the
        first worker takes a short lock and calls; the others wait for its result (at most
        one timeout: a slow holder does not hold them)."""
        store = self._store
        if store is None:
            return None
        found, _ = shared_fetch(store, self._fleet_name(key), _record, **self._fleet_lock())
        return self._taken(key, found)

    async def _from_fleet_async(self, key: bytes) -> Claims | None:
        """Like :meth:`_from_fleet`, on the store's asyncio client."""
        store = self._store
        if store is None:
            return None
        found, _ = await shared_fetch_async(
            store, self._fleet_name(key), _record, **self._fleet_lock()
        )
        return self._taken(key, found)

    def _fleet_lock(self) -> dict[str, float]:
        """The caller holds the lock for two timeouts; the others wait at most one (the
        timeout the calls are made with)."""
        timeout = self._http.settings.timeout
        return {"lock_ttl": timeout * 2, "wait": timeout}

    def _taken(self, key: bytes, found: Any) -> Claims | None:
        """A stored result, checked and cached here; ``None`` when unusable."""
        if not isinstance(found, dict) or not isinstance(found.get("claims"), dict):
            return None
        now = self._clock()
        until = as_number(found.get("until"))
        if until is None or until <= now:
            return None
        claims: Claims = found["claims"]
        # re-checked as stored, whoever stored it: an inactive answer or a past exp is absent
        if claims.get("active", True) is not True:
            return None
        exp = claims.get("exp")
        expiry = None if exp is None else as_number(exp)
        if exp is not None and (expiry is None or expiry <= now):
            return None
        self._results.put(key, claims, until)
        return claims

    def _share(self, key: bytes, claims: Claims, deadline: float) -> None:
        shared = self._shared(key, claims, deadline)
        if shared is not None and self._store is not None:
            self._store.set_json(*shared)

    def _shared(
        self, key: bytes, claims: Claims, deadline: float
    ) -> tuple[str, dict[str, Any], float] | None:
        """What to store for the fleet (name, record, ttl), or ``None``: no store, or a
        result already past its deadline."""
        ttl = deadline - self._clock()
        if self._store is None or ttl <= 0:
            return None
        return self._fleet_name(key), {"claims": claims, "until": deadline}, ttl

    # -- the shared, pure bookkeeping ---------------------------------------------------------

    def _before(self, key: bytes) -> Claims | None:
        now = self._clock()
        outcome = self._results.get(key)
        if outcome is not None:
            if isinstance(outcome, AuthGateError):
                raise type(outcome)(outcome.message)
            return outcome
        if now < self._blocked_until:
            raise _unavailable(f"{self.name} is rate-limiting us", self._blocked_until - now)
        if self._failures >= self.policy.breaker_threshold and now < self._open_until:
            raise _unavailable(
                f"{self.name} is failing; not calling it for a while", self._open_until - now
            )
        return None

    def _count_call(self) -> float:
        with self._lock:
            self.upstream_calls += 1
        return time.monotonic()

    def _report(self, *events: Event) -> None:
        if self._emit is not None:
            for event in events:
                self._emit(event)

    def _accepted(self, key: bytes, claims: Claims, started: float) -> tuple[Claims, float]:
        now = self._clock()
        deadline = now + self.policy.success_ttl
        expires = self._expires_at(claims)
        if expires is not None:
            if expires <= now:
                exc = InvalidToken(f"{self.name} vouches for a token that has expired")
                raise self._failed(key, exc, "", started)
            deadline = min(deadline, expires)
        recovered = self._healthy()
        self._results.put(key, claims, deadline)
        call = RemoteCall(self.name, "accepted", 200, time.monotonic() - started)
        self._report(call, *recovered)
        return claims, deadline

    def _healthy(self) -> tuple[BreakerChange, ...]:
        """Reset the failure count; the breaker's closing, if it was open (logged once)."""
        with self._lock:
            was_open = self._failures >= self.policy.breaker_threshold
            self._failures = 0
            self._blocked_until = 0.0
        if not was_open:
            return ()
        info(LOGGER, "%s answers again: the breaker is closed", self.name)
        return (BreakerChange(self.name, "closed"),)

    def _failed(
        self, key: bytes, exc: AuthGateError | UpstreamError, token: str, started: float
    ) -> AuthGateError:
        now = self._clock()
        seconds = time.monotonic() - started
        if isinstance(exc, AuthGateError):  # a definitive answer: the upstream is healthy
            recovered = self._healthy()
            self._results.put(key, exc, now + self.policy.failure_ttl)
            self._report(RemoteCall(self.name, "rejected", None, seconds), *recovered)
            return exc
        with self._lock:
            self._failures += 1
            retry_after = self.policy.breaker_cooldown
            newly_limited = False
            if exc.status == 429:
                retry_after = exc.retry_after if exc.retry_after is not None else 5.0
                newly_limited = now >= self._blocked_until
                self._blocked_until = now + retry_after
            opened = self._failures == self.policy.breaker_threshold
            if self._failures >= self.policy.breaker_threshold:
                self._open_until = now + self.policy.breaker_cooldown
                retry_after = max(retry_after, self.policy.breaker_cooldown)
        # the upstream's own words go to our logs, redacted (our secrets, the credential);
        # the client gets our stable, generic message.
        said = upstream_summary(exc.detail, secrets=self._secrets, credential=token)
        warning(LOGGER, "%s verification failed: %s %s", self.name, exc.message, said)
        if newly_limited:
            warning(LOGGER, "%s is rate-limiting us: no calls for %.0f s", self.name, retry_after)
        events: list[Event] = [RemoteCall(self.name, "failed", exc.status, seconds)]
        if opened:
            warning(LOGGER, "%s failed %d times in a row: the breaker is open for %.0f s",
                    self.name, self._failures, self.policy.breaker_cooldown)  # fmt: skip
            events.append(BreakerChange(self.name, "open"))
        self._report(*events)
        return _unavailable(f"{self.name}: {exc.message}", retry_after)


def _unavailable(detail: str, retry_after: float) -> ProviderUnavailable:
    """Our outage: a generic message for the client, the cause in ``detail`` for operators."""
    error = ProviderUnavailable(retry_after=retry_after)
    error.detail = detail
    return error


def _key(token: str) -> bytes:
    # results are kept by digest: no token sits in memory longer than its request needs.
    return sha256(token)


def _exp_claim(claims: Claims) -> float | None:
    return as_number(claims.get("exp"))


def _record(found: Any) -> dict[str, Any] | None:
    """A stored record read back: a JSON object, else absent (checked by ``_taken``)."""
    return found if isinstance(found, dict) else None
