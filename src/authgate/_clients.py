"""The pooled HTTP clients of a component: one sync client, one async client per event loop,
each opened on first use and closed by ``close``/``aclose``, its loop's shutdown, or the
garbage collector (see :class:`Clients`)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._exchange import Plan, _client_options, _send, _send_async, sync_transport
from ._upstream import HTTPSettings

if TYPE_CHECKING:
    import httpx

__all__ = ["Clients", "close_loop_clients", "loop_client"]

T = TypeVar("T")


class Clients:
    """The pooled HTTP clients of one component (a key source, a remote verifier): one sync
    client, and one async client per event loop (an ``httpx.AsyncClient`` belongs to the
    loop it was first used on). Connections are kept alive and reused between calls.

    Each client is made on first use and closed by :meth:`close` / :meth:`aclose` (which
    ``Authenticator.close()`` and the ASGI lifespan call); after that, the next call opens a
    new one. Without them nothing leaks either: an async client is closed when its event
    loop shuts down (``asyncio.run``, uvicorn, anyio), and every client when its component is
    garbage-collected or the interpreter exits.

    Args:
        settings: the limits of every exchange.
    """

    def __init__(self, settings: HTTPSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._sync_box: list[httpx.Client | None] = [None]  # a box the finalizer shares
        self._loops: weakref.WeakKeyDictionary[Any, _LoopClient] = weakref.WeakKeyDictionary()
        weakref.finalize(self, _close_all, self._lock, self._sync_box, self._loops)

    # -- sync ---------------------------------------------------------------------------------

    def run(self, plan: Plan[T]) -> T:
        """Drive ``plan`` to its result on the pooled sync client.

        Args:
            plan: the exchange, as a generator of requests.
        """
        client = self._sync_box[0] or self._open_sync()
        try:
            request = next(plan)
            while True:
                request = plan.send(_send(client, request, self.settings))
        except StopIteration as done:
            result: T = done.value
            return result

    def _open_sync(self) -> httpx.Client:
        import httpx

        with self._lock:
            client = self._sync_box[0]
            if client is None:
                client = httpx.Client(
                    transport=sync_transport(self.settings), **_client_options(self.settings)
                )
                self._sync_box[0] = client
            return client

    # -- async --------------------------------------------------------------------------------

    async def run_async(self, plan: Plan[T]) -> T:
        """Drive ``plan`` to its result on this event loop's pooled async client.

        Args:
            plan: the exchange, as a generator of requests.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        held = self._loops.get(loop)
        client = held.client if held is not None else await self._open_async(loop)
        try:
            request = next(plan)
            while True:
                request = plan.send(await _send_async(client, request, self.settings))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _open_async(self, loop: Any) -> httpx.AsyncClient:
        import httpx

        def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=self.settings.async_transport, **_client_options(self.settings)
            )

        client: httpx.AsyncClient = await loop_client(self._loops, make)
        return client

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client, and the async clients of loops that can still run them."""
        _close_all(self._lock, self._sync_box, self._loops)

    async def aclose(self) -> None:
        """Close this loop's async client (awaiting it), then everything :meth:`close` does."""
        import asyncio

        held = self._loops.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.keeper.aclose()
        self.close()


class _LoopClient:
    """One loop's async client and its keeper: an async generator whose ``finally`` closes the
    client. Started on the loop, it is in the loop's set of async generators, which
    ``loop.shutdown_asyncgens()`` finalizes when the loop ends (as ``asyncio.run`` does).
    Any client with an ``aclose()`` (httpx's, redis-py's) is kept this way."""

    __slots__ = ("__weakref__", "client", "keeper")

    def __init__(
        self,
        client: Any,
        loops: weakref.WeakKeyDictionary[Any, _LoopClient],
        loop: Any,
    ) -> None:
        self.client = client
        self.keeper = _keep(client, loops, weakref.ref(loop))


async def loop_client(
    loops: weakref.WeakKeyDictionary[Any, _LoopClient], make: Callable[[], Any]
) -> Any:
    """The running loop's client in ``loops``, made by ``make`` on first use and closed when
    the loop shuts down (or by :func:`close_loop_clients`).

    Args:
        loops: the clients by loop.
        make: builds a client (with an ``aclose()`` coroutine method).
    """
    import asyncio

    loop = asyncio.get_running_loop()
    held = loops.get(loop)
    if held is None:  # one loop runs one task at a time: no await between get and set
        held = loops[loop] = _LoopClient(make(), loops, loop)
        await held.keeper.__anext__()
    return held.client


async def _keep(
    client: Any,
    loops: weakref.WeakKeyDictionary[Any, _LoopClient],
    loop: weakref.ref[Any],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        alive = loop()
        if alive is not None:
            loops.pop(alive, None)
        await client.aclose()


_closing: set[Any] = set()  # close tasks in flight (the loop holds tasks only weakly)


def _close_all(
    lock: threading.Lock,
    sync: list[httpx.Client | None],
    loops: weakref.WeakKeyDictionary[Any, _LoopClient],
) -> None:
    """Close a :class:`Clients`' clients (also its finalizer: it must not hold the object)."""

    with lock:
        client, sync[0] = sync[0], None
    if client is not None:
        client.close()
    close_loop_clients(loops)


def close_loop_clients(loops: weakref.WeakKeyDictionary[Any, _LoopClient]) -> None:
    """Close the clients of every loop that can still run its close (see :func:`loop_client`).

    Args:
        loops: the clients by loop.
    """
    import asyncio

    for loop, held in list(loops.items()):
        if loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loops.pop(loop, None)
        if running is not None and loop is running:  # sync close from async code: soon
            task = running.create_task(held.keeper.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        elif loop.is_running():  # another thread's loop: ask it
            asyncio.run_coroutine_threadsafe(held.keeper.aclose(), loop)
        else:  # a stopped loop: run the close on it
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(held.keeper.aclose())
