"""A shared store for a fleet of workers, on Redis (or Valkey): the ``authgate[redis]`` extra.

::

    from authgate.redis import RedisStore
    store = RedisStore("redis://127.0.0.1:6379/0", prefix="authgate:", timeout=0.05)
    auth = Authenticator([...], store=store)
    auth.revoke(token)   # every worker refuses it at once

What it shares today: **revocations**. Each one is written as a key that expires when every
token it can match has expired (never earlier), and published on one channel. Each process
keeps one subscription (a daemon thread), applies each revocation to its denylist and purges
its cache; a cache hit never touches Redis. A process loads the whole denylist before its
first verification completes, and after any reconnection it reloads it and purges its whole
cache before trusting it again. While Redis is down, ``revoke`` applies locally at once and
keeps the revocation (bounded) to write and publish on reconnect.

What is stored: digests of tokens' signing inputs (never a token), ``jti`` values, subjects
with their cut-off and issuer. Nothing in Redis helps anyone present a credential.

Redis is an accelerator, never a single point of failure: every call is bounded by
``timeout``; failures are logged once per transition. While the subscription is down, a
process cannot learn new revocations: ``on_unavailable="serve"`` (the default) keeps serving on
what it knows; ``"refuse"`` answers 503 for the tokens of providers marked ``revocable``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Literal

from ._clients import close_loop_clients, loop_client
from ._extras import extra_missing
from ._json import loads_strict
from ._log import error, info, warning
from .errors import ConfigurationError
from .store import Revocation

try:
    import redis  # noqa: F401 (here: an install without the extra is told at import)
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.redis", "redis", exc) from exc

__all__ = ["RedisStore", "Revocation"]

LOGGER: Final = "authgate.store"
_SCHEMES: Final = ("redis://", "rediss://", "unix://")
_HEARTBEAT: Final = 0.5  # an idle subscription PINGs this often ...
_SILENCE: Final = 2.0  # ... and is stale when nothing, not even a reply, came this long
_MAX_BACKOFF: Final = 5.0  # between background writes of revocations that failed
_MAX_RECORD: Final = 1 << 20  # a shared record larger than a key set's body cap is not ours


class RedisStore:
    """Revocations shared by every worker of a fleet through Redis.

    Args:
        url: the Redis URL (``redis://``, ``rediss://``, ``unix://``).
        prefix: the prefix of every key and of the channel.
        timeout: seconds bounding every Redis call.
        on_unavailable: ``"serve"`` (keep serving on what is known) or ``"refuse"`` (503 for
            the tokens of ``revocable`` providers) while the subscription is down.
        max_pending: the most revocations kept unwritten (a write that failed is retried in
            the background, with backoff, until Redis takes it); beyond it the oldest is
            dropped and an ERROR logged.
        retry: seconds between reconnection attempts (Redis back: trusted again within it).
        secret: the fleet's shared secret (at least 32 bytes). With it, remote-verification
            results and key sets are shared between workers as records authenticated with
            HMAC-SHA256 (over the key name and the value), checked before use. Without it
            nothing that could admit a request is read from Redis: revocations (which can
            only refuse) are shared, results and key sets are not.
        startup_timeout: how long a new worker's first verification waits for the whole
            denylist to load. Past it, ``refuse`` answers 503 for revocable tokens until the
            load completes, and ``serve`` serves on what is loaded, with a WARNING.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "authgate:",
        timeout: float = 0.05,
        on_unavailable: Literal["serve", "refuse"] = "serve",
        max_pending: int = 10_000,
        retry: float = 1.0,
        secret: str | bytes | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if on_unavailable not in ("serve", "refuse"):
            raise ConfigurationError("on_unavailable must be 'serve' or 'refuse'")
        if not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError("timeout must be a number of seconds > 0")
        if not isinstance(startup_timeout, int | float) or not startup_timeout > 0:
            raise ConfigurationError("startup_timeout must be a number of seconds > 0")
        self.startup_timeout = float(startup_timeout)
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ConfigurationError(
                "the store URL must start with redis://, rediss:// or unix:// "
                "(e.g. redis://localhost:6379/0)"
            )
        if secret is not None:
            raw = secret.encode() if isinstance(secret, str) else secret
            if not isinstance(raw, bytes) or len(raw) < 32:
                raise ConfigurationError("the store's secret must be at least 32 bytes")
            secret = raw
        self._secret: bytes | None = secret
        self.url = url
        self.prefix = prefix
        self.timeout = float(timeout)
        self.on_unavailable = on_unavailable
        self.retry = retry
        self.channel = prefix + "revocations"
        self._pending: deque[Revocation] = deque(maxlen=max_pending)
        self._lock = threading.Lock()
        self._client: Any = None
        self._apply: Callable[[Revocation], None] | None = None
        self._reloaded: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loaded = threading.Event()
        self._subscribed = False
        self._down_logged = False
        self._calls_failing = False
        self._skip_until = 0.0
        self._retry_at = 0.0  # the next background write of pending revocations
        self._backoff = self.retry
        self._loops: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # -- wiring (the Authenticator calls these) ------------------------------------------------

    def subscribe(self, apply: Callable[[Revocation], None], reloaded: Callable[[], None]) -> None:
        """Deliver revocations to ``apply``; call ``reloaded`` after each full reload.

        Args:
            apply: applies one revocation locally (denylist and cache).
            reloaded: purges the local cache (it may hold what a missed revocation denies).
        """
        self._apply, self._reloaded = apply, reloaded

    @property
    def started(self) -> bool:
        """Whether the subscriber has been started (the first verification starts it)."""
        return self._thread is not None

    @property
    def subscribed(self) -> bool:
        """Whether this process is listening to revocations now."""
        return self._subscribed

    def ensure_started(self) -> None:
        """Connect lazily: the first call loads the denylist (waiting at most a few store
        timeouts) and starts the subscriber thread; later calls cost one flag check."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._listen, name="authgate-store", daemon=True)
            self._thread.start()
        # a dead or silent Redis fails the loader within a store timeout or two; a live one
        # with a large denylist holds the first verification until all of it is known
        if not self._loaded.wait(self.startup_timeout) and self.on_unavailable == "serve":
            warning(LOGGER, "the denylist at %s was not loaded within %.0f s: serving on what "
                    "is loaded so far; revoked tokens may pass until it is",
                    _where(self.url), self.startup_timeout)  # fmt: skip

    # -- writes ---------------------------------------------------------------------------------

    def publish(self, revocation: Revocation) -> bool:
        """Store and publish one revocation; whether the fleet has it now (else it is kept and
        written in the background, with backoff, until Redis takes it).

        Args:
            revocation: the revocation.
        """
        self.ensure_started()
        try:
            self._write(self._connection(), revocation)
        except Exception as exc:
            self._keep(revocation, exc)
            return False
        return True

    def _keep(self, revocation: Revocation, exc: Exception) -> None:
        """A write failed (a stall, OOM, a partition): keep it for the background retry. The
        subscription is not judged by it: it has its own heartbeat."""
        with self._lock:
            first = not self._pending  # one line per episode, not one per failed sign-out
            if len(self._pending) == self._pending.maxlen:
                error(LOGGER, "more than %d revocations wait to be written: the oldest is "
                      "dropped and reaches other workers only by its own expiry",
                      self._pending.maxlen)  # fmt: skip
            self._pending.append(revocation)
            self._retry_at = time.monotonic()  # the subscriber's next turn tries again
        if first:
            warning(LOGGER, "a revocation could not be written to %s (%s): retrying in the "
                    "background", _where(self.url), type(exc).__name__)  # fmt: skip

    def _write(self, client: Any, revocation: Revocation) -> None:
        ttl = max(1, int(revocation["until"] - time.time()) + 60)  # never shorter than its life
        body = json.dumps(revocation, sort_keys=True)
        pipe = client.pipeline(transaction=False)
        pipe.set(self._key(revocation), body, ex=ttl)
        pipe.publish(self.channel, body)
        pipe.execute()

    def _key(self, revocation: Revocation) -> str:
        import hashlib

        kind = revocation["kind"]
        name = {"token": "digest", "jti": "jti", "subject": "subject"}[kind]
        ident = f"{revocation.get('issuer') or ''}|{revocation[name]}"
        return f"{self.prefix}rv:{kind}:{hashlib.sha256(ident.encode()).hexdigest()}"

    # -- shared values: remote results and key sets (bounded calls that never raise) -----------

    def get_json(self, name: str) -> Any:
        """The JSON value stored under ``name`` (below the prefix), or ``None`` when absent,
        unreadable, or Redis cannot answer within the timeout.

        Args:
            name: the key, below the prefix.
        """
        if self._secret is None or self._skipping():
            return None
        try:
            body = self._connection().get(self.prefix + name)
        except Exception as exc:
            self._call_failed(exc)
            return None
        self._call_worked()
        return self._opened(name, body)

    def set_json(self, name: str, value: Any, ttl: float) -> bool:
        """Store ``value`` under ``name`` for ``ttl`` seconds; whether Redis took it.

        Args:
            name: the key, below the prefix.
            value: a JSON value (never a credential).
            ttl: seconds it lives (at least 1 ms).
        """
        if self._secret is None or self._skipping():
            return False
        try:
            self._connection().set(
                self.prefix + name, self._sealed(name, value), px=max(1, int(ttl * 1000))
            )
        except Exception as exc:
            self._call_failed(exc)
            return False
        self._call_worked()
        return True

    def claim(self, name: str, ttl: float) -> bool | None:
        """Claim ``name`` for ``ttl`` seconds, once for the whole fleet: ``True`` for the first
        worker, ``False`` for any other, ``None`` when Redis cannot answer (the caller
        decides). Needs no fleet secret: a planted claim can only refuse, never admit.

        Args:
            name: the claim, below the prefix (a DPoP proof id, a new tenant slot).
            ttl: seconds before it lapses.
        """
        return self._set_once("once:" + name, ttl)

    async def claim_async(self, name: str, ttl: float) -> bool | None:
        """Like :meth:`claim`, on this event loop's asyncio client.

        Args:
            name: the claim, below the prefix.
            ttl: seconds before it lapses.
        """
        return await self._set_once_async("once:" + name, ttl)

    def _set_once(self, key: str, ttl: float) -> bool | None:
        """``SET key NX PX ttl`` below the prefix: whether it was set; ``None`` when Redis
        cannot answer (or is being skipped after a failure)."""
        if self._skipping():
            return None
        try:
            taken = self._connection().set(
                self.prefix + key, "1", nx=True, px=max(1, int(ttl * 1000))
            )
        except Exception as exc:
            self._call_failed(exc)
            return None
        self._call_worked()
        return bool(taken)

    async def _set_once_async(self, key: str, ttl: float) -> bool | None:
        if self._skipping():
            return None
        try:
            client = await self._aconnection()
            taken = await client.set(self.prefix + key, "1", nx=True, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._call_failed(exc)
            return None
        self._call_worked()
        return bool(taken)

    def try_lock(self, name: str, ttl: float) -> bool:
        """Take the fleet-wide lock ``name`` for ``ttl`` seconds unless another worker holds
        it. When Redis cannot answer, ``True``: each worker then acts on its own, as without
        a store (liveness over deduplication).

        Args:
            name: the lock, below the prefix.
            ttl: seconds before it lapses by itself.
        """
        if self._secret is None:
            return True
        return self._set_once("lock:" + name, ttl) is not False

    @property
    def shares(self) -> bool:
        """Whether results and key sets are shared (only with a fleet secret)."""
        return self._secret is not None

    def _sealed(self, name: str, value: Any) -> str:
        """``value`` as stored: its JSON text and an HMAC over the key and that text."""
        assert self._secret is not None
        text = json.dumps(value, separators=(",", ":"))
        mac = hmac.new(self._secret, f"{self.prefix}{name}\0{text}".encode(), "sha256")
        return json.dumps({"mac": mac.hexdigest(), "value": text})

    def _opened(self, name: str, body: Any) -> Any:
        """The value of a stored record, or ``None`` when it is absent, too large, not a record
        of ours, its HMAC does not match (planted or moved), or its JSON is unusable. Whoever
        can write to Redis can at most make a worker ask the identity provider itself."""
        if body is None or self._secret is None or len(body) > _MAX_RECORD:
            return None
        try:
            record = loads_strict(body)
            if not isinstance(record, dict) or set(record) != {"mac", "value"}:
                return None
            mac, text = record["mac"], record["value"]
            if not isinstance(mac, str) or not isinstance(text, str):
                return None
            expected = hmac.new(self._secret, f"{self.prefix}{name}\0{text}".encode(), "sha256")
            if not hmac.compare_digest(expected.hexdigest(), mac):
                return None
            return loads_strict(text)
        except ValueError:  # not JSON, too deep, a lone surrogate...
            return None

    # -- the same from async code: redis-py's asyncio client, one per event loop --------------

    async def get_json_async(self, name: str) -> Any:
        """Like :meth:`get_json`, on this event loop's asyncio client.

        Args:
            name: the key, below the prefix.
        """
        if self._secret is None or self._skipping():
            return None
        try:
            client = await self._aconnection()
            body = await client.get(self.prefix + name)
        except Exception as exc:
            self._call_failed(exc)
            return None
        self._call_worked()
        return self._opened(name, body)

    async def set_json_async(self, name: str, value: Any, ttl: float) -> bool:
        """Like :meth:`set_json`, on this event loop's asyncio client.

        Args:
            name: the key, below the prefix.
            value: a JSON value (never a credential).
            ttl: seconds it lives.
        """
        if self._secret is None or self._skipping():
            return False
        try:
            client = await self._aconnection()
            sealed = self._sealed(name, value)
            await client.set(self.prefix + name, sealed, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._call_failed(exc)
            return False
        self._call_worked()
        return True

    async def try_lock_async(self, name: str, ttl: float) -> bool:
        """Like :meth:`try_lock`, on this event loop's asyncio client.

        Args:
            name: the lock, below the prefix.
            ttl: seconds before it lapses by itself.
        """
        if self._secret is None:
            return True
        return await self._set_once_async("lock:" + name, ttl) is not False

    async def publish_async(self, revocation: Revocation) -> bool:
        """Like :meth:`publish`, on this event loop's asyncio client.

        Args:
            revocation: the revocation.
        """
        if not self.started:
            import asyncio

            await asyncio.to_thread(self.ensure_started)  # once: the subscriber is a thread
        try:
            client = await self._aconnection()
            ttl = max(1, int(revocation["until"] - time.time()) + 60)
            body = json.dumps(revocation, sort_keys=True)
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(self._key(revocation), body, ex=ttl)
                pipe.publish(self.channel, body)
                await pipe.execute()
        except Exception as exc:
            self._keep(revocation, exc)
            return False
        return True

    async def _aconnection(self) -> Any:
        def make() -> Any:
            import redis.asyncio

            return redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
            )

        return await loop_client(self._loops, make)

    async def aclose(self) -> None:
        """Close this loop's asyncio client (awaiting it), then everything :meth:`close` does."""
        import asyncio

        held = self._loops.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.keeper.aclose()
        self.close()

    def _skipping(self) -> bool:
        """After a failed call, skip the store for ``retry`` seconds: a dead or silent Redis
        costs a request at most one timeout per interval, not one per call."""
        return self._calls_failing and time.monotonic() < self._skip_until

    def _call_failed(self, exc: Exception) -> None:
        self._skip_until = time.monotonic() + self.retry
        if not self._calls_failing:
            self._calls_failing = True
            where, error = _where(self.url), type(exc).__name__
            warning(LOGGER, "the store at %s does not answer (%s): each worker verifies and "
                    "fetches on its own until it does", where, error)  # fmt: skip

    def _call_worked(self) -> None:
        if self._calls_failing:
            self._calls_failing = False
            info(LOGGER, "the store at %s answers again", _where(self.url))

    # -- the subscriber -------------------------------------------------------------------------

    def _connection(self) -> Any:
        client = self._client
        if client is None:
            import redis

            client = self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=0,
                decode_responses=True,
            )
        return client

    def _listen(self) -> None:
        while not self._stopping.is_set():
            pubsub = None
            try:
                client = self._connection()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)  # subscribed before loading: nothing slips by
                self._flush_pending(client)
                self._reload(client)
                self._came_back()
                heard = time.monotonic()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=_HEARTBEAT)
                    now = time.monotonic()
                    if message is not None:
                        heard = now  # a message or a PING's reply: the link is alive
                        if message.get("type") == "message":
                            self._deliver(message.get("data"))
                    elif now - heard > _SILENCE:
                        # no reply to our PINGs: a silent partition. Stale from here on.
                        raise TimeoutError("the subscription's heartbeat went unanswered")
                    else:
                        pubsub.ping()  # its reply arrives as a message: awaited above
                    if self._pending and now >= self._retry_at:
                        self._retry_pending(client)
            except Exception as exc:
                self._went_down(exc)
                self._loaded.set()  # never keep the first request waiting on a dead store
                self._stopping.wait(self.retry)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection
                        pubsub.close()

    def _reload(self, client: Any) -> None:
        found: list[str] = []
        batch: list[str] = []
        for key in client.scan_iter(match=f"{self.prefix}rv:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                found.extend(body for body in client.mget(batch) if body is not None)
                batch = []
        if batch:
            found.extend(body for body in client.mget(batch) if body is not None)
        for body in found:
            self._deliver(body)
        if self._reloaded is not None:
            self._reloaded()
        self._loaded.set()

    def _flush_pending(self, client: Any) -> None:
        while self._pending:
            revocation = self._pending[0]
            self._write(client, revocation)
            with self._lock:
                if self._pending and self._pending[0] is revocation:
                    self._pending.popleft()

    def _retry_pending(self, client: Any) -> None:
        """Write what failed before, from the subscriber thread; back off while it fails."""
        try:
            self._flush_pending(client)
        except Exception as exc:
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            self._retry_at = time.monotonic() + self._backoff
            self._call_failed(exc)
            return
        self._backoff = self.retry
        info(LOGGER, "the revocations that waited are written to %s", _where(self.url))

    def _deliver(self, body: Any) -> None:
        try:
            revocation = json.loads(body)
        except (TypeError, ValueError):
            return  # not ours: anything may publish on a channel
        if isinstance(revocation, dict) and self._apply is not None:
            try:
                self._apply(revocation)
            except Exception as exc:  # a malformed record must not stop the subscription
                warning(LOGGER, "ignored a revocation record that does not parse (%s)",
                        type(exc).__name__)  # fmt: skip

    def _went_down(self, exc: Exception) -> None:
        was_subscribed, self._subscribed = self._subscribed, False
        if was_subscribed and self.on_unavailable == "refuse" and self._reloaded is not None:
            self._reloaded()  # cached revocable tokens must take the full path, and its 503
        if not self._down_logged:
            self._down_logged = True
            warning(LOGGER, "the store at %s is unavailable (%s): revocations from other "
                    "workers wait until it returns; %s", _where(self.url), type(exc).__name__,
                    "serving on what is known" if self.on_unavailable == "serve"
                    else "refusing revocable tokens")  # fmt: skip

    def _came_back(self) -> None:
        was_down = self._down_logged
        self._subscribed = True
        self._down_logged = False
        if was_down:
            info(
                LOGGER, "the store at %s is back: denylist reloaded, cache purged", _where(self.url)
            )

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the subscription and close the connections."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(2)
        client, self._client = self._client, None
        if client is not None:
            client.close()
        close_loop_clients(self._loops)


def _where(url: str) -> str:
    from ._log import safe_url

    return safe_url(url)
