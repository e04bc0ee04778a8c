"""Single-flight: concurrent callers with the same key share one execution."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar, cast

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Run ``fn`` once per key at a time; callers arriving meanwhile get the same outcome.

    Sync callers share by thread; async callers share a task per event loop, shielded so that
    a cancelled caller never cancels the work the others wait for.

    Args:
        wait: the longest a sync follower waits for the leader, in seconds.
    """

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[T]] = {}
        self._tasks: dict[tuple[int, Hashable], asyncio.Task[T]] = {}

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        """The outcome of ``fn()``, shared with every concurrent caller of the same key.

        Args:
            key: what identifies identical work.
            fn: the work.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            if not call.done.wait(self.wait):
                raise TimeoutError("the shared call did not finish in time")
            if call.error is not None:
                raise call.error
            return cast("T", call.value)  # set by the leader before done was set
        try:
            call.value = fn()
            return call.value
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    async def do_async(self, key: Hashable, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Like :meth:`do`, for coroutines, sharing one task per event loop.

        Args:
            key: what identifies identical work.
            fn: the work.
        """
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        task = self._tasks.get(slot)
        if task is None:
            task = loop.create_task(fn())
            self._tasks[slot] = task
            task.add_done_callback(lambda _: self._tasks.pop(slot, None))
        return await asyncio.shield(task)
