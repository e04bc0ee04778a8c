"""Single-flight: one execution per key; every flight ends, whatever its work does."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from authgate import ProviderUnavailable
from authgate._flight import SingleFlight

from .conftest import all_at_once


def test_concurrent_callers_share_one_execution() -> None:
    """100 threads asking at once run the work once and all get its value."""
    runs: list[int] = []
    flight: SingleFlight[str] = SingleFlight(wait=5)

    def work() -> str:
        runs.append(1)
        time.sleep(0.05)
        return "done"

    assert all_at_once(lambda: flight.do("k", work)) == ["done"] * 100
    assert len(runs) <= 2  # threads released together; a straggler may lead a second flight


@pytest.mark.parametrize(
    "error", [ValueError("bad jwks_uri"), MemoryError(), KeyboardInterrupt()], ids=type
)
def test_any_exception_ends_the_flight(error: BaseException) -> None:
    """Work that raises anything settles its flight: the next caller runs the work anew."""
    flight: SingleFlight[str] = SingleFlight(wait=5)

    def failing() -> str:
        raise error

    with pytest.raises(type(error)):
        flight.do("k", failing)
    assert not flight.in_flight("k")
    assert flight.do("k", lambda: "again") == "again"


def test_a_follower_that_waits_too_long_gets_the_configured_error() -> None:
    """A wait that runs out is the caller's ProviderUnavailable, never a raw TimeoutError,
    and the stuck flight is abandoned to the next caller."""
    release = threading.Event()
    flight: SingleFlight[str] = SingleFlight(
        wait=0.2, timed_out=lambda: ProviderUnavailable("still waiting")
    )
    leader = threading.Thread(target=lambda: flight.do("k", lambda: str(release.wait(5))))
    leader.start()
    time.sleep(0.05)
    with pytest.raises(ProviderUnavailable, match="still waiting"):
        flight.do("k", lambda: "never")
    assert flight.do("k", lambda: "fresh") == "fresh"
    release.set()
    leader.join()


def test_a_flight_whose_event_loop_closed_does_not_poison_other_loops() -> None:
    """A task left pending when its loop closes never finishes; callers on another loop lead a
    new flight instead of waiting on it."""
    flight: SingleFlight[str] = SingleFlight(wait=5)
    started = threading.Event()

    async def hangs() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    first = asyncio.new_event_loop()
    pending: list[asyncio.Future[str | None]] = []

    async def begin() -> None:
        pending.append(asyncio.ensure_future(flight.do_async("k", hangs)))
        await asyncio.sleep(0.01)

    first.run_until_complete(begin())
    first.close()  # the flight's task is still pending on a closed loop
    assert started.is_set()

    async def later() -> str | None:
        async def fine() -> str:
            return "fetched"

        return await flight.do_async("k", fine)

    assert asyncio.run(asyncio.wait_for(later(), 2)) == "fetched"


def test_a_cancelled_flight_ends_and_counts_as_failed() -> None:
    """Cancelling the task that leads a flight settles it; the next caller leads anew."""
    flight: SingleFlight[str] = SingleFlight(wait=5)

    async def scenario() -> str | None:
        async def slow() -> str:
            await asyncio.sleep(3600)
            return "never"

        caller = asyncio.ensure_future(flight.do_async("k", slow))
        await asyncio.sleep(0.01)
        assert flight.in_flight("k")
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and task is not caller:
                task.cancel()  # the shared work itself
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert not flight.in_flight("k")

        async def quick() -> str:
            return "again"

        return await flight.do_async("k", quick)

    assert asyncio.run(scenario()) == "again"


def test_admission_refused_runs_nothing() -> None:
    """When admit says no (a cooldown), nothing runs and None is returned."""
    flight: SingleFlight[str] = SingleFlight(wait=5)
    assert flight.do("k", lambda: "ran", admit=lambda: False) is None
    assert flight.do("k", lambda: "ran", admit=lambda: True) == "ran"


def test_an_attached_flight_shares_one_execution_among_tasks() -> None:
    """detached=False: the leader runs the work itself; 50 tasks on its loop share it."""
    runs: list[int] = []
    flight: SingleFlight[str] = SingleFlight(wait=5, detached=False)

    async def work() -> str:
        runs.append(1)
        await asyncio.sleep(0.05)
        return "done"

    async def main() -> list[str | None]:
        return await asyncio.gather(*(flight.do_async("k", work) for _ in range(50)))

    assert asyncio.run(main()) == ["done"] * 50
    assert runs == [1]


def test_followers_of_a_cancelled_attached_leader_lead_again() -> None:
    """A leader cancelled mid-work (its client went away) does not cancel its followers:
    they start the work anew and get its value; the cancellation stays the leader's."""
    runs: list[int] = []
    flight: SingleFlight[str] = SingleFlight(wait=5, detached=False)

    async def work() -> str:
        runs.append(1)
        await asyncio.sleep(0.05)
        return "done"

    async def main() -> tuple[bool, list[str | None]]:
        leader = asyncio.create_task(flight.do_async("k", work))
        await asyncio.sleep(0.01)  # the leader is inside the work
        followers = [asyncio.create_task(flight.do_async("k", work)) for _ in range(3)]
        await asyncio.sleep(0.01)
        leader.cancel()
        values = await asyncio.gather(*followers)
        try:
            await leader
        except asyncio.CancelledError:
            return True, values
        return False, values

    cancelled, values = asyncio.run(main())
    assert cancelled
    assert values == ["done"] * 3
    assert len(runs) == 2  # the cancelled one, and one new flight for all three followers
    assert not flight.in_flight("k")
