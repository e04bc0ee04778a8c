"""A shared store for a fleet of workers, on Redis or Valkey: the ``authgate[redis]`` extra.

::

    from authgate.redis import RedisStore
    store = RedisStore("redis://127.0.0.1:6379/0", timeout=0.05)
    auth = Authenticator([...], store=store)
    auth.revoke(token)   # every worker refuses it within milliseconds

    # or bring your own client: Sentinel, Cluster, TLS, the valkey client...
    store = RedisStore(client=Sentinel([...]).master_for("mymaster"))
    store = RedisStore(client=RedisCluster(host="10.0.0.1", port=7000))

**Revocations are a log, not only messages.** Each is a member of one sorted set
(``{authgate}:denylist``: the score is when it may be forgotten; the key has no TTL, so no
``volatile-*`` eviction picks it; authgate prunes expired members itself) and an entry in one
stream (``{authgate}:log``, capped near 100,000 entries), both written by one script, so
atomically. The ``{…}`` hash tag keeps both in one Cluster slot. A worker loads the set,
remembering where the stream stood, then follows the stream with a blocking read whose answer
doubles as its heartbeat. After a disconnect it resumes where it stopped; when the stream was
trimmed past that point, or Redis restarted (its ``run_id`` changed: a restart without
persistence, a failover), it writes back what it holds (restoring what Redis lost) and reloads.
A new worker's first verification waits for the whole denylist (``startup_timeout``).

A write that fails (a stall, OOM, a partition) is kept and retried in the background with
backoff until Redis takes it; ``revoke()`` says whether the fleet has it now.

**Redis can deny, never admit.** What is stored for revocations: digests of tokens' signing
inputs (never a token), ``jti`` values, subjects with their cut-off and issuer; a planted
revocation can only refuse. Remote-verification results and key sets are shared only with a
fleet ``secret``, as records authenticated with HMAC-SHA256, checked before use.

Redis is an accelerator, never a single point of failure: every call is bounded by
``timeout``; failures are logged once per transition. A worker whose follow read goes
unanswered for about two seconds knows its view may be stale: ``on_unavailable="serve"`` (the
default) keeps serving on what it knows; ``"refuse"`` answers 503 for the tokens of providers
marked ``revocable``, until the store answers again.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
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
_BLOCK: Final = 0.5  # the follower's blocking read waits this long for new revocations ...
_SILENCE: Final = 1.5  # ... and beyond it, an answer this late means a silent partition
_MAX_BACKOFF: Final = 5.0  # between background writes of revocations that failed
_MAX_RECORD: Final = 1 << 20  # a shared record larger than a key set's body cap is not ours
_LOG_LENGTH: Final = 100_000  # stream entries kept (about) for workers catching up
_PAGE: Final = 10_000  # members per ZSCAN page, entries per stream read
_SEED_BATCH: Final = 1_000

# ZADD GT keeps the latest "until" of a member; expired members are pruned on every write;
# the stream entry carries the same member. One script: atomic, one slot, one round trip.
_WRITE: Final = """
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'r', ARGV[1], 'u', ARGV[2])
"""


class RedisStore:
    """Revocations shared by every worker of a fleet through Redis or Valkey.

    Args:
        url: the Redis URL (``redis://``, ``rediss://``, ``unix://``); the default when
            neither it nor ``client`` is given is ``redis://127.0.0.1:6379/0``.
        client: a ready client instead of a URL: redis-py's ``Redis`` (TLS, an ACL user...),
            a Sentinel ``master_for(...)`` client, ``RedisCluster``, or the ``valkey``
            package's twins. Its own socket timeouts apply to its calls (keep them short);
            authgate never closes it.
        async_client: the asyncio twin of ``client``, for the async paths (``revoke_async``,
            shared results); without it they run ``client`` in a thread.
        prefix: the prefix of every key (the revocation keys put it in a hash tag).
        timeout: seconds bounding every Redis call made through ``url``.
        on_unavailable: ``"serve"`` (keep serving on what is known) or ``"refuse"`` (503 for
            the tokens of ``revocable`` providers) while this worker's view may be stale.
        max_pending: the most revocations kept unwritten (a write that failed is retried in
            the background, with backoff, until Redis takes it); beyond it the oldest is
            dropped and an ERROR logged.
        retry: seconds between reconnection attempts (Redis back: trusted again within it).
        secret: the fleet's shared secret (at least 32 bytes). With it, remote-verification
            results and key sets are shared between workers as records authenticated with
            HMAC-SHA256 (over the key name and the value), checked before use. Without it
            nothing that could admit a request is read from Redis: revocations (which can
            only refuse) are shared, results and key sets are not.
        startup_timeout: how long a new worker's first verifications wait for the whole
            denylist to load (Redis unreachable included: a failover, a restart). Past it,
            ``refuse`` answers 503 for revocable tokens until the load completes, and
            ``serve`` serves on what is known, with a WARNING.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        prefix: str = "authgate:",
        timeout: float = 0.05,
        on_unavailable: Literal["serve", "refuse"] = "serve",
        max_pending: int = 10_000,
        retry: float = 1.0,
        secret: str | bytes | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if on_unavailable not in ("serve", "refuse"):
            raise ConfigurationError("on_unavailable must be 'serve' or 'refuse'")
        if not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError("timeout must be a number of seconds > 0")
        if not isinstance(startup_timeout, int | float) or not startup_timeout > 0:
            raise ConfigurationError("startup_timeout must be a number of seconds > 0")
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be a non-empty string without braces")
        if client is None and async_client is not None:
            raise ConfigurationError("async_client= goes with client= (its sync twin)")
        if client is not None:
            if url is not None:
                raise ConfigurationError("give the store a URL or a client, not both")
            _check_client(client, asynchronous=False)
            if async_client is not None:
                _check_client(async_client, asynchronous=True)
            self._where = _describe(client)
        else:
            url = "redis://127.0.0.1:6379/0" if url is None else url
            if not isinstance(url, str) or not url.startswith(_SCHEMES):
                raise ConfigurationError(
                    "the store URL must start with redis://, rediss:// or unix:// "
                    "(e.g. redis://localhost:6379/0)"
                )
            self._where = _where(url)
        if secret is not None:
            raw = secret.encode() if isinstance(secret, str) else secret
            if not isinstance(raw, bytes) or len(raw) < 32:
                raise ConfigurationError("the store's secret must be at least 32 bytes")
            secret = raw
        self._secret: bytes | None = secret
        self.startup_timeout = float(startup_timeout)
        self.url = url
        self.prefix = prefix
        self.timeout = float(timeout)
        self.on_unavailable = on_unavailable
        self.retry = retry
        tag = "{" + (prefix[:-1] if prefix.endswith(":") else prefix) + "}:"
        self.denylist_key = tag + "denylist"
        """The sorted set of revocations (member: what is revoked; score: until when)."""
        self.log_key = tag + "log"
        """The stream every revocation is appended to, which workers follow."""
        self._own = client is None  # a client made from the URL is ours to close
        self._client: Any = client
        self._async_client: Any = async_client
        self._pending: deque[Revocation] = deque(maxlen=max_pending)
        self._lock = threading.Lock()
        self._apply: Callable[[list[Revocation]], None] | None = None
        self._reloaded: Callable[[], None] | None = None
        self._held: Callable[[], list[Revocation]] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loaded = threading.Event()  # the first load completed
        self._ready = False  # the first calls waited (for the load, or the startup timeout)
        self._deadline = 0.0
        self._subscribed = False
        self._down_logged = False
        self._calls_failing = False
        self._skip_until = 0.0
        self._retry_at = 0.0  # the next background write of pending revocations
        self._backoff = self.retry
        self._position: str | None = None  # the last stream entry applied
        self._run_id: str | None = None  # the Redis server run that position belongs to
        self._seed_needed = False
        self._loops: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # -- wiring (the Authenticator calls these) ------------------------------------------------

    def subscribe(
        self,
        apply: Callable[[list[Revocation]], None],
        reloaded: Callable[[], None],
        held: Callable[[], list[Revocation]],
    ) -> None:
        """Deliver revocations to ``apply``; call ``reloaded`` after each full reload.

        Args:
            apply: applies revocations locally (denylist and cache), a batch at a time.
            reloaded: purges the local cache (it may hold what a missed revocation denies).
            held: the revocations this worker holds, written back after Redis lost data.
        """
        self._apply, self._reloaded, self._held = apply, reloaded, held

    @property
    def started(self) -> bool:
        """Whether the first verifications are past their wait (the denylist loaded, or the
        startup timeout passed): later ones do not wait."""
        return self._ready

    @property
    def subscribed(self) -> bool:
        """Whether this worker follows the fleet's revocations now (its view is fresh)."""
        return self._subscribed

    def ensure_started(self) -> None:
        """Connect lazily: the first calls wait until the whole denylist is loaded, at most
        ``startup_timeout`` after the first (a large denylist, a failover, Redis still coming
        up; the follower retries every ``retry`` seconds meanwhile); later calls cost one
        flag check."""
        if self._ready:
            return
        with self._lock:
            if self._thread is None:
                self._deadline = time.monotonic() + self.startup_timeout
                self._thread = threading.Thread(
                    target=self._listen, name="authgate-store", daemon=True
                )
                self._thread.start()
        loaded = self._loaded.wait(max(0.0, self._deadline - time.monotonic()))
        with self._lock:
            if self._ready:
                return
            self._ready = True
        if not loaded:
            warning(LOGGER, "the denylist at %s was not loaded within %g s: %s until it is",
                    self._where, self.startup_timeout,
                    "serving on what is known; revoked tokens may pass"
                    if self.on_unavailable == "serve"
                    else "refusing revocable tokens")  # fmt: skip

    # -- writes ---------------------------------------------------------------------------------

    def publish(self, revocation: Revocation) -> bool:
        """Store one revocation (the denylist and the log); whether the fleet has it now
        (else it is kept and written in the background, with backoff, until Redis takes it).

        Args:
            revocation: the revocation.
        """
        self.ensure_started()
        try:
            self._write(self._sync(), [revocation])
        except Exception as exc:
            self._keep(revocation, exc)
            return False
        return True

    async def publish_async(self, revocation: Revocation) -> bool:
        """Like :meth:`publish`, on this event loop's asyncio client.

        Args:
            revocation: the revocation.
        """
        import asyncio

        if not self.started:
            await asyncio.to_thread(self.ensure_started)  # once: the follower is a thread
        try:
            client = await self._aconnection()
            if client is None:
                return await asyncio.to_thread(self.publish, revocation)
            await client.eval(_WRITE, 2, self.denylist_key, self.log_key, *self._args(revocation))
        except Exception as exc:
            self._keep(revocation, exc)
            return False
        return True

    def _keep(self, revocation: Revocation, exc: Exception) -> None:
        """A write failed (a stall, OOM, a partition): keep it for the background retry. The
        follower is not judged by it: its reads are its heartbeat."""
        with self._lock:
            first = not self._pending  # one line per episode, not one per failed sign-out
            if len(self._pending) == self._pending.maxlen:
                error(LOGGER, "more than %d revocations wait to be written: the oldest is "
                      "dropped and reaches other workers only by its own expiry",
                      self._pending.maxlen)  # fmt: skip
            self._pending.append(revocation)
            self._retry_at = time.monotonic()  # the follower's next turn tries again
        if first:
            warning(LOGGER, "a revocation could not be written to %s (%s): retrying in the "
                    "background", self._where, type(exc).__name__)  # fmt: skip

    def _args(self, revocation: Revocation) -> tuple[Any, ...]:
        """The write script's arguments: member, until, the prune cut-off, the log's cap."""
        until = float(revocation["until"])
        return _member(revocation), repr(until), repr(time.time() - 60), _LOG_LENGTH

    def _write(self, client: Any, revocations: list[Revocation]) -> None:
        if len(revocations) == 1:
            client.eval(_WRITE, 2, self.denylist_key, self.log_key, *self._args(revocations[0]))
            return
        pipe = client.pipeline(transaction=False)
        for revocation in revocations:
            pipe.eval(_WRITE, 2, self.denylist_key, self.log_key, *self._args(revocation))
        pipe.execute()

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
            body = self._sync().get(self.prefix + name)
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
            self._sync().set(
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
            taken = self._sync().set(self.prefix + key, "1", nx=True, px=max(1, int(ttl * 1000)))
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
            if client is None:
                import asyncio

                return await asyncio.to_thread(self._set_once, key, ttl)
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

    async def try_lock_async(self, name: str, ttl: float) -> bool:
        """Like :meth:`try_lock`, on this event loop's asyncio client.

        Args:
            name: the lock, below the prefix.
            ttl: seconds before it lapses by itself.
        """
        if self._secret is None:
            return True
        return await self._set_once_async("lock:" + name, ttl) is not False

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
            record = loads_strict(_text(body))
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

    async def get_json_async(self, name: str) -> Any:
        """Like :meth:`get_json`, on this event loop's asyncio client.

        Args:
            name: the key, below the prefix.
        """
        if self._secret is None or self._skipping():
            return None
        try:
            client = await self._aconnection()
            if client is None:
                import asyncio

                return await asyncio.to_thread(self.get_json, name)
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
            if client is None:
                import asyncio

                return await asyncio.to_thread(self.set_json, name, value, ttl)
            sealed = self._sealed(name, value)
            await client.set(self.prefix + name, sealed, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._call_failed(exc)
            return False
        self._call_worked()
        return True

    # -- clients --------------------------------------------------------------------------------

    def _sync(self) -> Any:
        """The sync client: the one given, or one made from the URL on first use."""
        client = self._client
        if client is None:
            import redis

            assert self.url is not None  # no client was given: a URL was
            client = self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
            )
        return client

    async def _aconnection(self) -> Any:
        """This loop's asyncio client (the one given, or one made from the URL per loop);
        ``None`` when only a sync client was given (the caller runs it in a thread)."""
        if self._async_client is not None or not self._own:
            return self._async_client

        url = self.url
        assert url is not None

        def make() -> Any:
            import redis.asyncio

            return redis.asyncio.Redis.from_url(
                url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
            )

        return await loop_client(self._loops, make)

    def _node(self) -> Any:
        """A client of the server holding the revocation keys: the sync client itself, or
        on a Cluster the node that serves their hash slot."""
        client = self._sync()
        if hasattr(client, "get_node_from_key"):  # RedisCluster (redis-py, valkey)
            node = client.get_node_from_key(self.log_key)
            return node.redis_connection or client.get_redis_connection(node)
        return client

    def _skipping(self) -> bool:
        """After a failed call, skip the store for ``retry`` seconds: a dead or silent Redis
        costs a request at most one timeout per interval, not one per call."""
        return self._calls_failing and time.monotonic() < self._skip_until

    def _call_failed(self, exc: Exception) -> None:
        self._skip_until = time.monotonic() + self.retry
        if not self._calls_failing:
            self._calls_failing = True
            warning(LOGGER, "the store at %s does not answer (%s): each worker verifies and "
                    "fetches on its own until it does", self._where,
                    type(exc).__name__)  # fmt: skip

    def _call_worked(self) -> None:
        if self._calls_failing:
            self._calls_failing = False
            info(LOGGER, "the store at %s answers again", self._where)

    # -- the follower -------------------------------------------------------------------------

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                node = self._node()
                self._catch_up(node)
                self._came_back()
                if self._seed_needed:
                    self._seed()
                self._flush_pending(self._sync())
                self._follow(node)
            except Exception as exc:
                self._went_down(exc)
                self._stopping.wait(self.retry)

    def _catch_up(self, node: Any) -> None:
        """After (re)connecting: what this server run is, then resume from the last entry
        applied, or reload when there is none, the log was trimmed past it, or the server
        restarted (then also write back what this worker holds)."""
        server = node.info("server")
        run_id = _text(server.get("run_id", ""))
        if run_id != self._run_id:
            self._inspect(node)
            if self._run_id is not None:  # a restart or a failover: writes may be lost
                self._seed_needed = True
                self._position = None
            self._run_id = run_id
        if (
            self._position is not None
            and self._held is not None
            and not node.exists(self.denylist_key)
        ):
            self._seed_needed = True  # the denylist vanished (evicted, flushed) under us
        if self._position is None or self._trimmed(node):
            self._reload(node)

    def _trimmed(self, node: Any) -> bool:
        """Whether the log lost entries after the last one applied here."""
        assert self._position is not None
        first = node.xrange(self.log_key, "-", "+", count=1)
        if not first:
            return self._position != "0-0"
        return _entry_id(_text(first[0][0])) > _entry_id(self._position)

    def _reload(self, node: Any) -> None:
        """Load the whole denylist, remembering where the log stood first: whatever lands
        after that point is read from the log, so nothing slips between load and follow."""
        last = node.xrevrange(self.log_key, "+", "-", count=1)
        position = _text(last[0][0]) if last else "0-0"
        from concurrent.futures import ThreadPoolExecutor

        def read(cursor: int) -> tuple[int, list[tuple[Any, float]]]:
            # ZSCAN returns every member present for the whole scan, whatever is added or
            # pruned meanwhile; with hiredis (the redis extra installs it) a page parses in C
            cursor, pairs = node.zscan(self.denylist_key, cursor, count=_PAGE)
            return int(cursor), pairs

        now = time.time()
        # the next page is read while this one is applied: Redis's work and ours overlap
        with ThreadPoolExecutor(1, thread_name_prefix="authgate-load") as reader:
            cursor, pairs = read(0)
            while True:
                upcoming = reader.submit(read, cursor) if cursor else None
                self._deliver(_page_records(pairs, now))
                if upcoming is None:
                    break
                cursor, pairs = upcoming.result()
        self._position = position
        if self._reloaded is not None:
            self._reloaded()
        self._loaded.set()

    def _follow(self, node: Any) -> None:
        """Read the log from the last entry applied, blocking; the read's answer (entries or
        an empty one when ``_BLOCK`` passes) is the heartbeat: none within ``_SILENCE`` more
        means a silent partition, and this worker's view is stale from then on."""
        pool = node.connection_pool
        connection = _connection_from(pool)
        try:
            while not self._stopping.is_set():
                assert self._position is not None
                connection.send_command("XREAD", "COUNT", _PAGE, "BLOCK", int(_BLOCK * 1000),
                                        "STREAMS", self.log_key, self._position)  # fmt: skip
                if not connection.can_read(timeout=_BLOCK + _SILENCE):
                    raise TimeoutError("the follow read went unanswered")
                self._take(connection.read_response())
                if self._pending and time.monotonic() >= self._retry_at:
                    self._retry_pending()
        except BaseException:
            connection.disconnect()  # a reply may still be on its way: never reuse it
            raise
        finally:
            pool.release(connection)

    def _take(self, reply: Any) -> None:
        """Apply the entries of one XREAD reply (RESP2 list or RESP3 map)."""
        if not reply:
            return
        streams = reply.items() if isinstance(reply, dict) else reply
        for _, entries in streams:
            batch: list[Revocation] = []
            for entry_id, fields in entries:
                self._position = _text(entry_id)
                values = dict(zip(fields[::2], fields[1::2], strict=False))
                member = values.get("r", values.get(b"r"))
                until = values.get("u", values.get(b"u"))
                if member is None or until is None:
                    continue  # not an entry of ours
                with contextlib.suppress(ValueError):
                    record = _record(_text(member), float(until))
                    if record is not None:
                        batch.append(record)
            self._deliver(batch)

    def _deliver(self, batch: list[Revocation]) -> None:
        if batch and self._apply is not None:
            self._apply(batch)

    def _seed(self) -> None:
        """Write back what this worker holds: Redis restarted without it or lost it."""
        held = self._held() if self._held is not None else []
        client = self._sync()
        for start in range(0, len(held), _SEED_BATCH):
            self._write(client, held[start : start + _SEED_BATCH])
        self._seed_needed = False
        if held:
            warning(LOGGER, "the store at %s lost revocations (a restart without persistence, "
                    "a failover or an eviction): %d written back from this worker",
                    self._where, len(held))  # fmt: skip

    def _inspect(self, node: Any) -> None:
        """Once per server run: refuse a Cluster reached without a cluster client, and say
        whether Redis's own policies can lose revocations (where CONFIG is permitted)."""
        if not hasattr(self._sync(), "get_node_from_key"):
            enabled = node.info("cluster").get("cluster_enabled")
            if str(enabled) == "1":
                error(
                    LOGGER,
                    "the store at %s is a Redis Cluster: give RedisStore(client="
                    "RedisCluster(...)); a plain client reaches only one node",
                    self._where,
                )
                raise ConfigurationError("a Redis Cluster needs client=RedisCluster(...)")
        try:
            found = {}
            for name in ("maxmemory-policy", "appendonly", "save"):
                found.update({_text(k): _text(v) for k, v in node.config_get(name).items()})
        except Exception as exc:  # NOPERM, or CONFIG renamed or disabled by a managed service
            info(LOGGER, "could not read the eviction policy of %s (%s): make sure it is not "
                 "allkeys-*", self._where, type(exc).__name__)  # fmt: skip
            return
        policy = found.get("maxmemory-policy", "")
        if policy.startswith("allkeys"):
            error(LOGGER, "the store at %s evicts any key under memory pressure (maxmemory-"
                  "policy %s): revocations can be lost; use noeviction or a volatile-* "
                  "policy (authgate's revocations have no TTL)", self._where, policy)  # fmt: skip
        if found.get("appendonly") == "no" and not found.get("save"):
            warning(LOGGER, "the store at %s persists nothing (no AOF, no RDB snapshots): after "
                    "a restart, revocations live only in running workers, which write them "
                    "back", self._where)  # fmt: skip

    def _flush_pending(self, client: Any) -> None:
        while self._pending:
            revocation = self._pending[0]
            self._write(client, [revocation])
            with self._lock:
                if self._pending and self._pending[0] is revocation:
                    self._pending.popleft()

    def _retry_pending(self) -> None:
        """Write what failed before, from the follower thread; back off while it fails."""
        try:
            self._flush_pending(self._sync())
        except Exception as exc:
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            self._retry_at = time.monotonic() + self._backoff
            self._call_failed(exc)
            return
        self._backoff = self.retry
        info(LOGGER, "the revocations that waited are written to %s", self._where)

    def _went_down(self, exc: Exception) -> None:
        was_subscribed, self._subscribed = self._subscribed, False
        if was_subscribed and self.on_unavailable == "refuse" and self._reloaded is not None:
            self._reloaded()  # cached revocable tokens must take the full path, and its 503
        if not self._down_logged:
            self._down_logged = True
            warning(LOGGER, "the store at %s is unavailable (%s): revocations from other "
                    "workers wait until it returns; %s", self._where, type(exc).__name__,
                    "serving on what is known" if self.on_unavailable == "serve"
                    else "refusing revocable tokens")  # fmt: skip

    def _came_back(self) -> None:
        was_down = self._down_logged
        self._subscribed = True
        self._down_logged = False
        if was_down:
            info(LOGGER, "the store at %s is back: caught up on revocations", self._where)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the follower and close the connections authgate opened (never a client that
        was given)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(_BLOCK + _SILENCE + 1)
        if self._own:
            client, self._client = self._client, None
            if client is not None:
                client.close()
        close_loop_clients(self._loops)

    async def aclose(self) -> None:
        """Close this loop's asyncio client (awaiting it), then everything :meth:`close` does."""
        import asyncio

        held = self._loops.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.keeper.aclose()
        self.close()


# -- how revocations are spelled in Redis -----------------------------------------------------

_MAX_MEMBER: Final = 4096  # a longer member is not ours: skipped


def _member(revocation: Revocation) -> str:
    """A revocation as a member of the denylist (its ``until`` is the score)."""
    kind = revocation["kind"]
    if kind == "token":
        return "t:" + str(revocation["digest"])
    if kind == "jti":
        return "j:" + json.dumps(str(revocation["jti"]))  # escaped: never a newline
    subject = [revocation.get("issuer"), revocation["subject"], revocation["issued_before"]]
    return "s:" + json.dumps(subject, separators=(",", ":"))


def _page_records(pairs: list[tuple[Any, float]], now: float) -> list[Revocation]:
    """The live revocations of one page of ``(member, until)``. Token digests, most of a
    denylist, take the short way; the authenticator checks their hex."""
    batch: list[Revocation] = []
    append = batch.append
    for member, until in pairs:
        if not now < until < float("inf"):
            continue
        if isinstance(member, bytes):
            member = member.decode("utf-8", "replace")
        if len(member) == 66 and member.startswith("t:"):
            append({"kind": "token", "digest": member[2:], "until": until})
        else:
            record = _record(member, until)
            if record is not None:
                append(record)
    return batch


def _record(member: str, until: float) -> Revocation | None:
    """The revocation a member spells, or ``None`` for anything that is not one of ours
    (whatever else sits in Redis is skipped: it may deny, never break the follower)."""
    if len(member) > _MAX_MEMBER or not until < float("inf"):
        return None
    kind, _, rest = member.partition(":")
    if kind == "t":
        if _DIGEST.fullmatch(rest):
            return {"kind": "token", "digest": rest, "until": until}
    elif kind == "j":
        try:
            jti = loads_strict(rest)
        except ValueError:
            return None
        if isinstance(jti, str) and jti:
            return {"kind": "jti", "jti": jti, "until": until}
    elif kind == "s":
        try:
            issuer, subject, cutoff = loads_strict(rest)
        except (ValueError, TypeError):
            return None
        if (
            isinstance(subject, str)
            and (issuer is None or isinstance(issuer, str))
            and isinstance(cutoff, int | float)
            and not isinstance(cutoff, bool)
        ):
            return {"kind": "subject", "subject": subject, "issuer": issuer,
                    "issued_before": float(cutoff), "until": until}  # fmt: skip
    return None


_DIGEST: Final = re.compile("[0-9a-f]{64}")


def _entry_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


def _text(value: Any) -> str:
    """A reply as text, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _connection_from(pool: Any) -> Any:
    """One connection of ``pool`` for the follower's blocking reads (redis-py 5.3+ takes no
    argument; valkey and older redis-py take a command name)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("XREAD")


def _check_client(client: Any, *, asynchronous: bool) -> None:
    import inspect

    if not callable(getattr(client, "execute_command", None)):
        raise ConfigurationError(
            "client must be a redis-py or valkey client (Redis, Sentinel master_for, RedisCluster)"
        )
    is_async = inspect.iscoroutinefunction(client.execute_command)
    if is_async and not asynchronous:
        raise ConfigurationError(
            "client= takes a sync client; give its asyncio twin as async_client= beside it"
        )
    if asynchronous and not is_async:
        raise ConfigurationError("async_client= takes an asyncio client (redis.asyncio...)")


def _describe(client: Any) -> str:
    """Where a given client points, for log lines: host and port, never credentials."""
    pool = getattr(client, "connection_pool", None)
    options = getattr(pool, "connection_kwargs", None) or {}
    host, port = options.get("host"), options.get("port")
    if host is not None:
        return f"redis://{host}:{port}"
    return f"the {type(client).__name__} client"


def _where(url: str) -> str:
    from ._log import safe_url

    return safe_url(url)
