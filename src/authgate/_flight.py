"""Single-flight: concurrent callers with the same key share one execution.

One implementation for the two places that need it: identical remote verifications, and key
fetches (where an admission rule, the cooldown, decides whether a new flight may start, and a
flight may also be started in the background). Sync callers share by thread; async callers
share a task, shielded so that a cancelled caller never cancels the work the others wait for.

A flight always ends: whatever the work raises (``CancelledError`` and ``MemoryError``
included) settles it, and a flight whose leader vanished (its event loop closed before the
task ran, a thread killed) is abandoned once ``wait`` has passed, so the next caller leads a
new one. Waiters on another event loop, or in threads, wait on a ``threading.Event``, never on
a task of a loop they don't run in.

asyncio is imported on first async use, not with authgate.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    import asyncio

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("error", "gate", "loop", "settled", "started", "task", "value", "waiter")

    def __init__(self) -> None:
        # held from birth until the flight settles: followers wait by acquiring it (a bare
        # lock, cheaper to make than an Event, which every flight would pay for)
        self.gate = threading.Lock()
        self.gate.acquire()
        self.settled = False
        self.waiter: asyncio.Future[None] | None = None
        self.value: T | None = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[T] | None = None
        self.started = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """Wait until the flight settles, at most ``timeout`` seconds; whether it did."""
        if self.gate.acquire(timeout=timeout):
            self.gate.release()  # for the next follower
            return True
        return self.settled


class SingleFlight(Generic[T]):
    """Run work once per key at a time; callers arriving meanwhile get the same outcome.

    Args:
        wait: the longest a follower waits for the leader, in seconds; a flight older than
            this is abandoned to the next caller.
        timed_out: builds the error a follower raises when its wait runs out; ``None``: the
            follower returns ``None`` instead (the caller re-reads shared state).
        detached: async work runs in a task of its own, so a cancelled leader never cancels
            it (key fetches: a cancelled fetch would start a cooldown for everyone). When
            false the leader runs the work itself, saving a task per flight, and followers
            on its loop whose leader was cancelled start a flight of their own.
    """

    def __init__(
        self,
        wait: float,
        timed_out: Callable[[], BaseException] | None = None,
        *,
        detached: bool = True,
    ) -> None:
        self.wait = wait
        self._timed_out = timed_out
        self._detached = detached
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[T]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def in_flight(self, key: Hashable) -> bool:
        """Whether work for ``key`` is running now.

        Args:
            key: what identifies identical work.
        """
        call = self._calls.get(key)
        return call is not None and not self._abandoned(call)

    # -- the three ways in --------------------------------------------------------------------

    def do(
        self, key: Hashable, fn: Callable[[], T], *, admit: Callable[[], bool] | None = None
    ) -> T | None:
        """The outcome of ``fn()``, shared with every concurrent caller of the same key.

        Args:
            key: what identifies identical work.
            fn: the work.
            admit: asked, under the lock, before a new flight starts; when it says no,
                nothing runs and ``None`` is returned.
        """
        call, leader = self._join(key, admit)
        if call is None:
            return None
        if leader:
            return self._lead(key, call, fn)
        if not call.wait(self._remaining(call)):
            return self._expired(key, call)
        return self._outcome(call)

    async def do_async(
        self,
        key: Hashable,
        fn: Callable[[], Coroutine[Any, Any, T]],
        *,
        admit: Callable[[], bool] | None = None,
    ) -> T | None:
        """Like :meth:`do`, for coroutines: one task, shared by the callers on its loop.

        Args:
            key: what identifies identical work.
            fn: the work.
            admit: as for :meth:`do`.
        """
        import asyncio

        call, leader = self._join(key, admit)
        if call is None:
            return None
        loop = asyncio.get_running_loop()
        if leader:
            call.loop = loop
            if not self._detached:
                call.waiter = loop.create_future()
                return await self._lead_async(key, call, fn)
            call.task = loop.create_task(self._lead_async(key, call, fn))
        task = call.task
        if task is not None and call.loop is loop:
            return await asyncio.shield(task)  # a cancelled caller does not cancel the work
        waiter = call.waiter
        if waiter is not None and call.loop is loop:
            await asyncio.shield(waiter)  # set when the leader settles, whatever its outcome
            if isinstance(call.error, asyncio.CancelledError):  # the leader's, not ours
                return await self.do_async(key, fn, admit=admit)
            return self._outcome(call)
        if not await asyncio.to_thread(call.wait, self._remaining(call)):
            return self._expired(key, call)
        return self._outcome(call)

    def start(
        self,
        key: Hashable,
        fn: Callable[[], T],
        fn_async: Callable[[], Coroutine[Any, Any, T]],
        *,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        """Start the work in the background unless it is in flight: as a task on the running
        event loop, else in a daemon thread. Its outcome is not reported to anyone here.

        Args:
            key: what identifies identical work.
            fn: the work, for a thread.
            fn_async: the same work, for a task.
            admit: as for :meth:`do`.
        """
        call, leader = self._join(key, admit)
        if call is None or not leader:
            return
        loop = _running_loop()
        if loop is None:
            threading.Thread(
                target=self._lead_quietly, args=(key, call, fn), name="authgate", daemon=True
            ).start()
            return
        call.loop = loop
        call.task = task = loop.create_task(self._lead_async(key, call, fn_async))
        self._background.add(task)
        task.add_done_callback(self._forget_background)

    # -- the shared bookkeeping ---------------------------------------------------------------

    def _join(
        self, key: Hashable, admit: Callable[[], bool] | None
    ) -> tuple[_Call[T] | None, bool]:
        with self._lock:
            call = self._calls.get(key)
            if call is not None and not self._abandoned(call):
                return call, False
            if admit is not None and not admit():
                return None, False
            call = self._calls[key] = _Call()
            return call, True

    def _abandoned(self, call: _Call[T]) -> bool:
        loop = call.loop
        if loop is not None and loop.is_closed() and not call.settled:
            return True  # its loop is gone: the task will never finish
        return time.monotonic() - call.started > self.wait

    def _remaining(self, call: _Call[T]) -> float:
        return max(0.0, self.wait - (time.monotonic() - call.started))

    def _lead(self, key: Hashable, call: _Call[T], fn: Callable[[], T]) -> T:
        try:
            value = fn()
        except BaseException as exc:
            self._settle(key, call, None, exc)
            raise
        self._settle(key, call, value, None)
        return value

    def _lead_quietly(self, key: Hashable, call: _Call[T], fn: Callable[[], T]) -> None:
        # background work reports through its own state; the flight is settled either way
        with contextlib.suppress(Exception):
            self._lead(key, call, fn)

    async def _lead_async(
        self, key: Hashable, call: _Call[T], fn: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        try:
            value = await fn()
        except BaseException as exc:
            self._settle(key, call, None, exc)
            raise
        self._settle(key, call, value, None)
        return value

    def _settle(
        self, key: Hashable, call: _Call[T], value: T | None, error: BaseException | None
    ) -> None:
        call.value, call.error = value, error
        with self._lock:
            if self._calls.get(key) is call:  # a newer flight may have replaced an abandoned one
                del self._calls[key]
        call.settled = True
        call.gate.release()
        waiter = call.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # on the leader's loop: the leader settles there

    def _expired(self, key: Hashable, call: _Call[T]) -> T | None:
        with self._lock:
            if self._calls.get(key) is call:
                del self._calls[key]  # the next caller leads a new flight
        if self._timed_out is None:
            return None
        raise self._timed_out()

    @staticmethod
    def _outcome(call: _Call[T]) -> T:
        if call.error is not None:
            raise call.error
        return cast("T", call.value)  # set by the leader before it settled

    def _forget_background(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: background failures report through their own state


def _running_loop() -> asyncio.AbstractEventLoop | None:
    if "asyncio" not in sys.modules:  # never imported: no loop can be running
        return None
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
