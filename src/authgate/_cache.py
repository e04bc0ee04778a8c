"""The verified-token cache: a hit is one dict lookup and one comparison.

Reads take no lock: ``dict.get`` is atomic in CPython, and an entry is an immutable pair.
Writes and evictions take a lock. Eviction is first-in first-out by entry count and by an
estimate of bytes. We measured cachetools' ``LRUCache`` behind a lock at 1.0 µs per hit and
``TLRUCache`` at 2.5 µs against 0.25 µs for a plain dict (LRU reads mutate, so they need the
lock); entries here live minutes at most, so recency buys little over insertion order.
"""

from __future__ import annotations

import hashlib
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from itertools import islice
from types import MappingProxyType
from typing import Any, Final, Generic, NamedTuple, TypeVar

from ._config import non_negative, size
from .extract import Credential
from .principal import Principal, shared_scopes

__all__ = [
    "DEFAULT_CACHE",
    "TAIL",
    "CacheLimits",
    "Expiring",
    "Memo",
    "Stats",
    "TokenCache",
    "cache_key",
    "entry_size",
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
    distinct junk tokens) cycles through it without ever growing it; :attr:`forgotten` says
    how far the entries it dropped reached, for a user that must not mistake a forgotten key
    for a new one (DPoP's proof ids). Reads are one lock-free ``dict.get`` and one
    comparison; writes take a lock.

    Args:
        size: the most entries held.
        clock: returns the current time, in the deadlines' unit.
    """

    __slots__ = ("_clock", "_data", "_lock", "forgotten", "size")

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size = size
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.forgotten = -math.inf
        """The latest deadline among the entries dropped to make room (``-inf``: none)."""

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

    def add(self, key: K, value: V, deadline: float) -> bool:
        """Hold ``value`` for ``key`` until ``deadline`` unless ``key`` is held and live;
        whether it was added (one lock: a check and a claim no other thread can split).

        Args:
            key: the key.
            value: the value.
            deadline: when it stops being read.
        """
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and self._clock() < entry[0]:
                return False
            self._insert(key, value, deadline)
            return True

    def put(self, key: K, value: V, deadline: float) -> None:
        """Hold ``value`` for ``key`` until ``deadline``.

        Args:
            key: the key.
            value: the value.
            deadline: when it stops being read.
        """
        with self._lock:
            self._insert(key, value, deadline)

    def _insert(self, key: K, value: V, deadline: float) -> None:
        # an OrderedDict drops its oldest in O(1); a dict's next(iter()) would scan every slot
        # its earlier evictions left empty (measured: 1 µs a put growing to 110 µs when full)
        data = self._data
        data.pop(key, None)
        while len(data) >= self.size:
            dropped = data.popitem(last=False)[1][0]
            if dropped > self.forgotten:
                self.forgotten = dropped
        data[key] = (deadline, value)


TAIL: Final = 16
"""How many trailing bytes of a credential key the cache is indexed by (see :class:`TokenCache`)."""

Key = bytes | str | tuple[str, str]
"""A cache key: the client's whole ``Authorization`` value, as bytes (ASGI) or as the str a
WSGI server decoded (:meth:`TokenCache.use_text_keys`); a token sent under the DPoP scheme is
``("DPoP", token)``, one sent with a client certificate ``("mTLS", token)``: no header value
equals either, so neither takes a shell's hit path."""

Entry = tuple[float, Principal, Key, "bytes | None"]
"""A cache entry: ``(valid_until, principal, key, input_digest)`` (the digest only for a token
without a ``jti``, see :func:`_targets`). Its size is not kept (an int each): it is computed
again when the entry goes."""

# What every entry holds besides its key, claims, scopes and roles, fitted to tracemalloc on
# CPython 3.11 (tests/test_authenticator.py holds it to 10 %): the entry tuple, its tail key,
# its deadline, the principal and its MappingProxy and expiry, the index's slots.
_ENTRY_OVERHEAD: Final = 370
_STR: Final = sys.getsizeof("")  # a compact ASCII str's header (49 bytes; 41 from 3.12)
_NUMBER: Final = sys.getsizeof(1 << 40)  # an int past the small ones CPython shares


def _json_size(value: dict[str, Any] | list[Any], depth: int = 0) -> int:
    """The bytes a decoded JSON container holds, estimated from lengths (no per-item call for
    strings and numbers): within a few percent of tracemalloc for ASCII claims."""
    size = sys.getsizeof(value)
    if depth >= 64:  # the strict JSON reader refuses deeper nesting anyway
        return size
    if type(value) is dict:
        items: Iterable[Any] = value.values()
        size += _STR * len(value) + sum(map(len, value))
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            size += _STR + len(item)
        elif kind is dict or kind is list:
            size += _json_size(item, depth + 1)
        elif kind is float or (kind is int and not -5 <= item <= 256):  # small ints are shared
            size += _NUMBER
    return size


def entry_size(key: Key, principal: Principal) -> int:
    """What one cache entry holds in memory (within about 10 % of tracemalloc): the key, the
    principal and its claims (every container and value in them), its scopes and roles, and
    the entry's share of the cache's index.

    Args:
        key: the cache key.
        principal: the principal stored (its claims are not shared with anything else once
            the request that verified them is over).
    """
    claims = principal.claims
    inner = claims.copy() if isinstance(claims, MappingProxyType) else dict(claims)
    size = _ENTRY_OVERHEAD + sys.getsizeof(key) + _json_size(inner)
    if isinstance(key, tuple):
        size += sys.getsizeof(key[1])
    if not shared_scopes(principal):
        size += sys.getsizeof(principal.scopes) + (_STR + 8) * len(principal.scopes)
    roles = principal.roles
    if roles:
        size += sys.getsizeof(roles) + (_STR + 8) * len(roles)
    return size


def cache_key(credential: Credential, text: bool = False) -> Key | None:
    """The verified-token cache key of ``credential``, or ``None`` when it is never cached.

    Only Bearer values are cached, under ``b"Bearer <token>"``: exactly what a client's
    ``Authorization`` header carries, so the hit path (:mod:`authgate._hitpath`) compares a raw
    header value without slicing or decoding it, and every key is a Bearer value. API keys
    are never cached (that would keep raw keys in memory).

    Args:
        credential: the extracted credential.
        text: the key as ``str`` (``"Bearer <token>"``), as a WSGI server hands the header.
    """
    if credential.kind != "bearer":
        return None
    if credential.header is not None:  # never a hit for an Authorization value
        return (credential.header, credential.value)
    if credential.proof is not None:
        return ("DPoP", credential.value)
    if credential.certificate is not None:  # a certificate-bound token is checked each time
        return ("mTLS", credential.value)
    if text:
        return "Bearer " + credential.value
    # extracted values are RFC 6750 b64token (ASCII); anything else can match no entry.
    return b"Bearer " + credential.value.encode("ascii", "replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheLimits:
    """The verified-token cache's bounds: pass as ``Authenticator(cache=...)``; ``cache=None``
    turns the cache off (every request is verified).

    Args:
        max_entries: the most tokens held (at least 1).
        max_bytes: the most bytes held, as estimated per entry (within about 10 % of traced
            memory: a ~650-byte RS256 token with typical claims takes about 2.2 KB).
        max_ttl: the longest an entry lives, whatever the token's ``exp`` (which is always
            honoured too); 0 caches nothing.
    """

    max_entries: int = 10_000
    max_bytes: int = 32 * 1024 * 1024
    max_ttl: float = 300.0

    def __post_init__(self) -> None:
        size(self.max_entries, "CacheLimits.max_entries", minimum=1)
        size(self.max_bytes, "CacheLimits.max_bytes")
        non_negative(self.max_ttl, "CacheLimits.max_ttl")


DEFAULT_CACHE: Final = CacheLimits()
"""The :class:`~authgate.Authenticator`'s cache by default: 10,000 entries, 32 MiB, 300 s."""


class TokenCache:
    """Verified principals by whole credential, bounded in entries and bytes, never past ``exp``.

    Entries are indexed by the last :data:`TAIL` bytes of their key (a JWT's signature, an
    opaque token's random tail) and hold the whole key, which a lookup compares: a hit costs
    the same whatever the token's length (hashing a whole 1 KB token costs about 4,000
    instructions, a comparison a few dozen), and equality of the whole credential is still
    what admits a request. Two cached credentials sharing a tail take turns in one slot.

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
        self._data: dict[Key, Entry] = {}
        self.text_keys = False
        """Whether keys are ``str`` (:meth:`use_text_keys`)."""
        # revocation targets -> the tails they reach, so a revocation purges in O(matches):
        # a tail alone (the usual case: no set per entry), or a set of several.
        self._index: dict[str, dict[object, Key | set[Key]]] = {
            "sub": {},
            "input": {},
            "jti": {},
        }
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        """Requests answered from the cache (the shells' hit paths count them too)."""

    def __len__(self) -> int:
        return len(self._data)

    def key_for(self, credential: Credential) -> Key | None:
        """``credential``'s key in this cache (:func:`cache_key`), or ``None``: never cached.

        Args:
            credential: the extracted credential.
        """
        return cache_key(credential, self.text_keys)

    def use_text_keys(self) -> None:
        """Key entries by the ``str`` a WSGI server decoded the header to, so a WSGI hit
        compares the header as it is, with no copy into bytes (whose cost grows with the
        token). The WSGI shell calls it; entries held under bytes keys are dropped. An ASGI
        shell over the same cache then finds its hits on the full path instead."""
        if not self.text_keys:
            self.clear()
            self.text_keys = True

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held."""
        return self._bytes

    @property
    def entries(self) -> dict[Key, Entry]:
        """The live mapping ``key[-TAIL:] -> entry``, for lock-free hot-path reads.

        Read it with ``.get``, then compare the entry's key (``entry[2]``) with the whole
        credential and its ``valid_until`` (``entry[0]``) with the clock; never write to it.
        """
        return self._data

    @property
    def clock(self) -> Callable[[], float]:
        """The clock entries are compared against."""
        return self._clock

    def get(self, key: Key) -> Principal | None:
        """The cached principal for ``key`` if it is still valid now.

        Args:
            key: the whole credential, as its cache key (``b"Bearer <token>"``).
        """
        entry = self._data.get(key[-TAIL:])
        if entry is None or entry[2] != key:
            return None
        if self._clock() < entry[0]:
            self.hits += 1
            return entry[1]
        self.discard(key)
        return None

    def put(self, key: Key, principal: Principal, valid_until: float | None) -> None:
        """Remember ``principal`` for ``key`` until ``valid_until`` (capped by ``max_ttl``).

        Nothing is stored when the deadline has already passed.

        Args:
            key: the whole credential, as its cache key (``b"Bearer <token>"``).
            principal: the verified principal (stored as it is: it is frozen).
            valid_until: the credential's expiry, or ``None`` when it has none.
        """
        now = self._clock()
        deadline = now + self.max_ttl
        if valid_until is not None and valid_until < deadline:
            deadline = valid_until
        if deadline <= now:
            return
        size = entry_size(key, principal)
        if size > self.max_bytes:
            return
        digest = None if isinstance(principal.claims.get("jti"), str) else input_digest(key)
        tail = key[-TAIL:]
        data = self._data
        with self._lock:
            if tail in data:
                self._forget(tail)
            while data and (len(data) >= self.max_entries or self._bytes + size > self.max_bytes):
                self._evict_oldest()
            data[tail] = (deadline, principal, key, digest)
            self._bytes += size
            for kind, value in _targets(principal, digest):
                index = self._index[kind]
                held = index.get(value)
                if held is None:
                    index[value] = tail
                elif type(held) is set:
                    held.add(tail)
                else:
                    index[value] = {held, tail}  # type: ignore[arg-type]

    def discard(self, key: Key) -> None:
        """Forget ``key`` if present.

        Args:
            key: the whole credential, as its cache key (``b"Bearer <token>"``).
        """
        tail = key[-TAIL:]
        with self._lock:
            entry = self._data.get(tail)
            if entry is not None and entry[2] == key:
                self._forget(tail)

    def discard_token(self, key: Key) -> None:
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
            held = self._index[kind].get(value)
            if held is None:
                return 0
            tails = list(held) if isinstance(held, set) else [held]
            doomed = [tail for tail in tails if predicate is None or predicate(self._data[tail][1])]
            for tail in doomed:
                self._forget(tail)
        return len(doomed)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
            for index in self._index.values():
                index.clear()
            self._bytes = 0

    def _evict_oldest(self) -> None:
        """Drop the oldest sixteenth of the entries (at least one), read in one pass: taking
        them one by one from the dict's front would rescan every slot the earlier evictions
        emptied (measured at 100k entries: 4 µs a put growing past 60 µs)."""
        data = self._data
        for tail in list(islice(data, max(1, len(data) // 16))):
            self._forget(tail)

    def _forget(self, tail: Key) -> None:
        entry = self._data.pop(tail)
        self._bytes -= entry_size(entry[2], entry[1])
        for kind, value in _targets(entry[1], entry[3]):
            index = self._index[kind]
            held = index.get(value)
            if held == tail:
                del index[value]
            elif type(held) is set:
                held.discard(tail)
                if len(held) == 1:
                    index[value] = held.pop()


def _targets(principal: Principal, digest: bytes | None) -> list[tuple[str, object]]:
    """The revocation targets a cache entry belongs to: its subject, and its ``jti`` or, for a
    token without one, its signing input's digest. A token with a ``jti`` needs no digest: every
    revocation of it (here or from another worker) also revokes its ``jti``, which reaches its
    re-signed spellings too (they carry the same ``jti``)."""
    jti = principal.claims.get("jti")
    if isinstance(jti, str):
        return [("sub", principal.subject), ("jti", jti)]
    return [("sub", principal.subject), ("input", digest)]


def signed_part(key: bytes) -> bytes | None:
    """The part of a JWT's cache key its signature covers (``Bearer header.payload``), which
    every re-signed spelling of the token shares; ``None`` for an opaque value.

    Args:
        key: a cache key.
    """
    return key[: key.rfind(b".")] if key.count(b".") == 2 else None


def _raw(key: Key) -> bytes:
    """``b"Bearer <token>"`` for any key."""
    if isinstance(key, tuple):
        return b"Bearer " + key[1].encode("ascii", "replace")
    return key.encode("ascii", "replace") if isinstance(key, str) else key


def input_digest(key: Key) -> bytes:
    """The digest of what a cached token's signature covers (``header.payload``; an opaque
    token: all of it): the denylist's key for it, which a revocation from another process
    carries instead of the token.

    Args:
        key: a cache key (``b"Bearer <token>"``).
    """
    raw = _raw(key)
    signed = signed_part(raw)
    return hashlib.sha256((raw if signed is None else signed)[7:]).digest()
