"""The verified-token cache: a hit is one dict lookup and one comparison.

Reads take no lock: ``dict.get`` is atomic in CPython, and an entry is an immutable pair.
Writes and evictions take a lock. Eviction is first-in first-out by entry count and by an
estimate of bytes. We measured cachetools' ``LRUCache`` behind a lock at 1.0 µs per hit and
``TLRUCache`` at 2.5 µs against 0.25 µs for a plain dict (LRU reads mutate, so they need the
lock); entries here live minutes at most, so recency buys little over insertion order.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Final, Generic, NamedTuple, TypeVar

from .extract import Credential
from .principal import Principal

__all__ = [
    "Expiring",
    "Memo",
    "Stats",
    "TokenCache",
    "cache_key",
    "count_of",
    "input_digest",
    "signed_part",
]


class Stats(NamedTuple):
    """Counters of an :class:`~authgate.Authenticator`, read when metrics are scraped.

    Args:
        hits: requests answered from the verified-token cache.
        misses: credentials verified past the cache (accepted or refused).
        cached: entries in the cache now.
    """

    hits: int
    misses: int
    cached: int


def count_of(counter: itertools.count[int]) -> int:
    """How many times ``next`` was called on a fresh ``itertools.count()`` (its repr is
    ``count(N)``): reading it costs the scraper, never the counted path.

    Args:
        counter: the counter.
    """
    return int(repr(counter)[6:-1])


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded memo of derived values, under the one policy every memo here follows.

    Keys are often attacker-chosen (header segments, kids): the memo never grows past ``size``
    and, when full, is emptied rather than evicted entry by entry, so a flood costs the flooder
    and a legitimate working set refills at once. Reads are one lock-free ``dict.get``.

    Args:
        size: the most entries held.
    """

    __slots__ = ("_data", "get", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: dict[K, V] = {}
        self.get = self._data.get

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``, emptying the memo first when it is full.

        Args:
            key: what the value was derived from.
            value: the derived value.
        """
        if len(self._data) >= self.size:
            self._data.clear()
        self._data[key] = value

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()


class Expiring(Generic[K, V]):
    """A bounded map whose entries each carry a deadline, past which they read as absent.

    Full, it drops its oldest entry first (insertion order), so a flood of new keys (e.g.
    distinct junk tokens) cycles through it without ever growing it. Reads are one lock-free
    ``dict.get`` and one comparison; writes take a lock.

    Args:
        size: the most entries held.
        clock: returns the current time, in the deadlines' unit.
    """

    __slots__ = ("_clock", "_data", "_lock", "size")

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size = size
        self._clock = clock
        self._data: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def get(self, key: K) -> V | None:
        """The value for ``key`` while its deadline is ahead, else ``None``.

        Args:
            key: the key.
        """
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() < entry[0]:
            return entry[1]
        with self._lock:
            if self._data.get(key) is entry:
                del self._data[key]
        return None

    def put(self, key: K, value: V, deadline: float) -> None:
        """Hold ``value`` for ``key`` until ``deadline``.

        Args:
            key: the key.
            value: the value.
            deadline: when it stops being read.
        """
        data = self._data
        with self._lock:
            data.pop(key, None)
            while len(data) >= self.size:
                del data[next(iter(data))]
            data[key] = (deadline, value)


_SLOT_OVERHEAD: Final = 480  # the dict slots (entries, sizes, groups), the size int


def _deep_size(value: object, depth: int = 0) -> int:
    """The bytes ``value`` holds: itself and, for JSON containers, everything inside."""
    getsizeof = sys.getsizeof
    size = getsizeof(value)
    if depth < 64:  # the strict JSON reader refuses deeper nesting anyway
        kind = type(value)
        if kind is dict:
            for name, item in value.items():  # type: ignore[attr-defined]
                size += getsizeof(name)
                inner = type(item)
                size += (
                    _deep_size(item, depth + 1)
                    if inner is dict or inner is list
                    else (getsizeof(item))
                )
        elif kind is list:
            for item in value:  # type: ignore[attr-defined]
                inner = type(item)
                size += (
                    _deep_size(item, depth + 1)
                    if inner is dict or inner is list
                    else (getsizeof(item))
                )
    return size


def entry_size(key: bytes, principal: Principal) -> int:
    """What one cache entry holds in memory, within a small factor: the key, the entry tuple,
    the principal and its claims (every container and value in them), its scopes.

    Args:
        key: the cache key.
        principal: the principal stored (its claims are not shared with anything else once
            the request that verified them is over).
    """
    claims = principal.claims
    inner = getattr(claims, "copy", None)  # a MappingProxyType: measure what it wraps
    size = sys.getsizeof(key) + 72 + sys.getsizeof(principal) + _SLOT_OVERHEAD
    size += _deep_size(inner() if callable(inner) else dict(claims)) + sys.getsizeof(claims)
    size += sys.getsizeof(principal.scopes) + sum(sys.getsizeof(s) for s in principal.scopes)
    return size


def cache_key(credential: Credential) -> bytes | None:
    """The verified-token cache key of ``credential``, or ``None`` when it is never cached.

    Only Bearer values are cached, under ``b"Bearer <token>"``: exactly what a client's
    ``Authorization`` header carries, so the hit path (:mod:`authgate._hitpath`) looks a raw
    header value up without slicing or decoding it, and every key is a Bearer value. API keys
    are never cached (that would keep raw keys in memory).

    Args:
        credential: the extracted credential.
    """
    if credential.kind != "bearer":
        return None
    # extracted values are RFC 6750 b64token (ASCII); anything else can match no entry.
    return b"Bearer " + credential.value.encode("ascii", "replace")


class TokenCache:
    """Verified principals by whole credential, bounded in entries and bytes, never past ``exp``.

    Args:
        max_entries: the most tokens held.
        max_bytes: the most (estimated) bytes held.
        max_ttl: the longest an entry lives, whatever its ``exp``.
        clock: the same clock the verifiers use.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 32 * 1024 * 1024,
        max_ttl: float = 300.0,
        clock: Callable[[], float],
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_ttl = max_ttl
        self._clock = clock
        self._data: dict[bytes, tuple[float, Principal]] = {}
        self._sizes: dict[bytes, int] = {}
        # revocation targets -> the keys they reach, so a revocation purges in O(matches):
        # ("input", signing input), ("jti", jti), ("sub", subject)
        self._groups: dict[tuple[str, object], set[bytes]] = {}
        self._member_of: dict[bytes, tuple[tuple[str, object], ...]] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = itertools.count()
        """Counts hits (the hit path ticks it: one C call); read it with :func:`count_of`."""

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held."""
        return self._bytes

    @property
    def entries(self) -> dict[bytes, tuple[float, Principal]]:
        """The live mapping ``token -> (valid_until, principal)``, for lock-free hot-path reads.

        Read it with ``.get`` and compare ``valid_until`` with the clock; never write to it.
        """
        return self._data

    @property
    def clock(self) -> Callable[[], float]:
        """The clock entries are compared against."""
        return self._clock

    def get(self, token: bytes) -> Principal | None:
        """The cached principal for ``token`` if it is still valid now.

        Args:
            token: the whole credential, as its cache key (``b"Bearer <token>"``).
        """
        entry = self._data.get(token)
        if entry is None:
            return None
        if self._clock() < entry[0]:
            next(self.hits)
            return entry[1]
        self.discard(token)
        return None

    def put(self, token: bytes, principal: Principal, valid_until: float | None) -> None:
        """Remember ``principal`` for ``token`` until ``valid_until`` (capped by ``max_ttl``).

        Nothing is stored when the deadline has already passed.

        Args:
            token: the whole credential, as its cache key (``b"Bearer <token>"``).
            principal: the verified principal (stored marked ``verified_by="cache"``).
            valid_until: the credential's expiry, or ``None`` when it has none.
        """
        now = self._clock()
        deadline = now + self.max_ttl
        if valid_until is not None and valid_until < deadline:
            deadline = valid_until
        if deadline <= now:
            return
        size = entry_size(token, principal)
        if size > self.max_bytes:
            return
        cached = principal.cached()
        with self._lock:
            if token in self._data:
                self._forget(token)
            while self._data and (
                len(self._data) >= self.max_entries or self._bytes + size > self.max_bytes
            ):
                self._forget(next(iter(self._data)))
            self._data[token] = (deadline, cached)
            self._sizes[token] = size
            self._bytes += size
            groups = _groups_of(token, cached)
            self._member_of[token] = groups
            for group in groups:
                self._groups.setdefault(group, set()).add(token)

    def discard(self, token: bytes) -> None:
        """Forget ``token`` if present.

        Args:
            token: the whole credential, as its cache key (``b"Bearer <token>"``).
        """
        with self._lock:
            if token in self._data:
                self._forget(token)

    def discard_token(self, key: bytes) -> None:
        """Forget a revoked token and every re-signed spelling of it (same signing input).

        Args:
            key: the token's cache key.
        """
        self.discard(key)
        self.discard_group("input", input_digest(key))

    def discard_group(
        self, kind: str, value: object, predicate: Callable[[Principal], bool] | None = None
    ) -> int:
        """Forget the entries a revocation reaches: every token with this signing input
        (``"input"``: its digest, as the denylist keeps it), ``"jti"`` or ``"sub"`` (subject),
        optionally only those whose principal ``predicate`` accepts; return how many.

        Args:
            kind: ``"input"``, ``"jti"`` or ``"sub"``.
            value: the signing input's digest (:func:`input_digest`), jti or subject.
            predicate: further narrows the entries forgotten (e.g. issued before a cut-off).
        """
        with self._lock:
            members = self._groups.get((kind, value))
            if not members:
                return 0
            doomed = [
                token for token in members if predicate is None or predicate(self._data[token][1])
            ]
            for token in doomed:
                self._forget(token)
        return len(doomed)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._groups.clear()
            self._member_of.clear()
            self._bytes = 0

    def _forget(self, token: bytes) -> None:
        del self._data[token]
        self._bytes -= self._sizes.pop(token)
        for group in self._member_of.pop(token, ()):
            members = self._groups.get(group)
            if members is not None:
                members.discard(token)
                if not members:
                    del self._groups[group]


def signed_part(key: bytes) -> bytes | None:
    """The part of a JWT's cache key its signature covers (``Bearer header.payload``), which
    every re-signed spelling of the token shares; ``None`` for an opaque value.

    Args:
        key: a cache key.
    """
    return key[: key.rfind(b".")] if key.count(b".") == 2 else None


def input_digest(key: bytes) -> bytes:
    """The digest of what a cached token's signature covers (``header.payload``; an opaque
    token: all of it): the denylist's key for it, which a revocation from another process
    carries instead of the token.

    Args:
        key: a cache key (``b"Bearer <token>"``).
    """
    signed = signed_part(key)
    return hashlib.sha256((key if signed is None else signed)[7:]).digest()


def _groups_of(key: bytes, principal: Principal) -> tuple[tuple[str, object], ...]:
    """The revocation targets a cache entry belongs to."""
    groups: list[tuple[str, object]] = [("sub", principal.subject), ("input", input_digest(key))]
    jti = principal.claims.get("jti")
    if isinstance(jti, str):
        groups.append(("jti", jti))
    return tuple(groups)
