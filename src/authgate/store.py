"""The shared store's contract: what the core asks of a fleet store (:mod:`authgate.redis`).

An :class:`~authgate.Authenticator` given a ``store`` shares revocations through it, and its
providers share remote results and key sets. :class:`authgate.redis.RedisStore` is the one
implementation; a test double or another backend implements this protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

__all__ = ["Revocation", "Store", "shared_fetch", "shared_fetch_async"]

T = TypeVar("T")

Revocation = dict[str, Any]
"""One revocation as stored and published: ``{"kind": "token", "digest": hex, "until": t}``,
``{"kind": "jti", "jti": ..., "until": t}`` or ``{"kind": "subject", "subject": ...,
"issued_before": t, "issuer": ...|None, "until": t}``."""


@runtime_checkable
class Store(Protocol):
    """A fleet's shared store. Every call is bounded by the store's own timeout and never
    raises for an outage: reads answer ``None``, writes ``False``."""

    on_unavailable: Literal["serve", "refuse"]
    """What revocable providers do while the subscription is down."""
    retry: float
    """Seconds between reconnection attempts (the ``Retry-After`` of a refusal)."""

    @property
    def started(self) -> bool:
        """Whether :meth:`ensure_started` has returned once (later calls do not wait)."""

    @property
    def subscribed(self) -> bool:
        """Whether revocations from the fleet reach this worker now."""

    @property
    def shares(self) -> bool:
        """Whether remote results and key sets are shared through the store: only as records
        it authenticates (a fleet secret); what can admit a request is never read otherwise."""

    def subscribe(
        self,
        apply: Callable[[list[Revocation]], None],
        reloaded: Callable[[], None],
        held: Callable[[], list[Revocation]],
    ) -> None:
        """Deliver the fleet's revocations to ``apply``; call ``reloaded`` after a full reload.

        Args:
            apply: applies revocations locally (denylist and cache), a batch at a time.
            reloaded: purges the local cache.
            held: the revocations this worker holds (to write back after the store lost
                them).
        """

    def ensure_started(self) -> None:
        """Start following the fleet's revocations; the first calls wait (bounded) until the
        denylist is loaded; later calls return at once."""

    def publish(self, revocation: Revocation) -> bool:
        """Store and announce a revocation; whether the store has it.

        Args:
            revocation: the revocation.
        """

    async def publish_async(self, revocation: Revocation) -> bool:
        """Like :meth:`publish`, without blocking the event loop.

        Args:
            revocation: the revocation.
        """

    def get_json(self, name: str) -> Any:
        """The JSON value stored under ``name``, or ``None``.

        Args:
            name: the record's name.
        """

    async def get_json_async(self, name: str) -> Any:
        """Like :meth:`get_json`, without blocking the event loop.

        Args:
            name: the record's name.
        """

    def set_json(self, name: str, value: Any, ttl: float) -> bool:
        """Store ``value`` under ``name`` for ``ttl`` seconds; whether it was stored.

        Args:
            name: the record's name.
            value: a JSON value.
            ttl: its lifetime.
        """

    async def set_json_async(self, name: str, value: Any, ttl: float) -> bool:
        """Like :meth:`set_json`, without blocking the event loop.

        Args:
            name: the record's name.
            value: a JSON value.
            ttl: its lifetime.
        """

    def try_lock(self, name: str, ttl: float) -> bool:
        """Take the short lock ``name`` for ``ttl`` seconds; whether this worker holds it.

        Args:
            name: the lock's name.
            ttl: how long it is held at most.
        """

    async def try_lock_async(self, name: str, ttl: float) -> bool:
        """Like :meth:`try_lock`, without blocking the event loop.

        Args:
            name: the lock's name.
            ttl: how long it is held at most.
        """

    def claim(self, name: str, ttl: float) -> bool | None:
        """Claim ``name`` for ``ttl`` seconds, once for the fleet: ``True`` for the first
        worker, ``False`` for the others, ``None`` when the store cannot answer.

        Args:
            name: the claim's name.
            ttl: its lifetime.
        """

    async def claim_async(self, name: str, ttl: float) -> bool | None:
        """Like :meth:`claim`, without blocking the event loop.

        Args:
            name: the claim's name.
            ttl: its lifetime.
        """

    def close(self) -> None:
        """Stop the subscription and close the connections."""

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""


# -- the fleet's shared fetch: get, else lock, else wait for the lock holder's result ---------


def shared_fetch(
    store: Store, name: str, usable: Callable[[Any], T | None], *, lock_ttl: float, wait: float
) -> tuple[T | None, bool]:
    """What another worker stored under ``name``, or the right to fetch it: ``(found, False)``
    when a usable record is there; ``(None, False)`` when this worker took the lock and should
    fetch (and store); ``(found or None, True)`` when another worker holds the lock, after
    waiting at most ``wait`` seconds for its record.

    Args:
        store: the fleet's store.
        name: the record's (and its lock's) name.
        usable: the record read back, checked (``None``: absent or unusable).
        lock_ttl: how long the lock is held at most.
        wait: how long a locked-out worker waits for the holder's record.
    """
    found = usable(store.get_json(name))
    if found is not None:
        return found, False
    if store.try_lock(name, lock_ttl):
        return None, False
    give_up = time.monotonic() + wait
    while found is None and time.monotonic() < give_up:
        time.sleep(_PAUSE)
        found = usable(store.get_json(name))
    return found, True


async def shared_fetch_async(
    store: Store, name: str, usable: Callable[[Any], T | None], *, lock_ttl: float, wait: float
) -> tuple[T | None, bool]:
    """Like :func:`shared_fetch`, on the store's asyncio client.

    Args:
        store: the fleet's store.
        name: the record's (and its lock's) name.
        usable: the record read back, checked (``None``: absent or unusable).
        lock_ttl: how long the lock is held at most.
        wait: how long a locked-out worker waits for the holder's record.
    """
    import asyncio

    found = usable(await store.get_json_async(name))
    if found is not None:
        return found, False
    if await store.try_lock_async(name, lock_ttl):
        return None, False
    give_up = time.monotonic() + wait
    while found is None and time.monotonic() < give_up:
        await asyncio.sleep(_PAUSE)
        found = usable(await store.get_json_async(name))
    return found, True


_PAUSE = 0.005  # between reads while another worker fetches: a few ms against a ~ms fetch
