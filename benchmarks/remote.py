"""A cache miss through IntrospectionProvider, next to a pooled httpx client doing the same.

The introspection endpoint (authgate.testing.FakeIntrospection) runs in its own process on
127.0.0.1, once over plain HTTP and once over TLS with a private CA. Each contender sends
one RFC 7662 request per distinct token and reads the JSON answer:

- ``authgate``: ``Authenticator.authenticate`` with a token never seen before (a cache miss:
  extract, route, the remote call on the provider's pooled client, the checks, the principal);
- ``httpx pooled``: one ``httpx.Client`` kept open, POSTing the same form with the same
  Basic credentials and parsing the JSON (the floor: what any pooled client pays);
- ``httpx new client``: a new ``httpx.Client`` per call, as authgate did before pooling.

Rounds are interleaved; medians of per-call microseconds, and ratios to the pooled client.
Sync and async (one event loop, ``httpx.AsyncClient``) both.

Run: ``python benchmarks/remote.py [--rounds N] [--number N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import multiprocessing
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from authgate import Authenticator, IntrospectionProvider, Upstream
from authgate.testing import FakeIntrospection
from authgate.testing.pki import PrivateCA

CLIENT_ID, CLIENT_SECRET = "resource-server", "s3cr3t+with/special=chars"


def serve(pipe: Connection, certs: tuple[str, str] | None, tokens: int) -> None:
    """The endpoint's process: start, send the URL and the tokens, serve until told."""
    idp = FakeIntrospection(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    if certs is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certs)
        idp.tls = context
    with idp:
        pipe.send((idp.introspection_url, [idp.issue(f"user-{i}") for i in range(tokens)]))
        pipe.recv()


def basic() -> str:
    pair = f"{quote(CLIENT_ID, safe='')}:{quote(CLIENT_SECRET, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def sync_contenders(url: str, verify: Any) -> dict[str, Callable[[str], object]]:
    upstream = Upstream(verify=verify) if verify is not True else None
    provider = IntrospectionProvider(
        "idp", url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, upstream=upstream
    )
    auth = Authenticator([provider])
    pooled = httpx.Client(verify=verify)
    headers = {"authorization": basic()}

    def through_authgate(token: str) -> object:
        return auth.authenticate({"authorization": f"Bearer {token}"})

    def through_pooled(token: str) -> object:
        answer = pooled.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    def through_new_client(token: str) -> object:
        with httpx.Client(verify=verify) as client:
            answer = client.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    return {
        "authgate": through_authgate,
        "httpx pooled": through_pooled,
        "httpx new client": through_new_client,
    }


def async_contenders(url: str, verify: Any) -> dict[str, Callable[[str], Awaitable[object]]]:
    upstream = Upstream(verify=verify) if verify is not True else None
    provider = IntrospectionProvider(
        "idp", url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, upstream=upstream
    )
    auth = Authenticator([provider])
    pooled = httpx.AsyncClient(verify=verify)
    headers = {"authorization": basic()}

    async def through_authgate(token: str) -> object:
        return await auth.authenticate_async({"authorization": f"Bearer {token}"})

    async def through_pooled(token: str) -> object:
        answer = await pooled.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    return {"authgate": through_authgate, "httpx pooled": through_pooled}


def per_call_us(call: Callable[[str], object], tokens: Iterator[str], number: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            assert call(next(tokens)) is not None
        return (time.perf_counter() - start) / number * 1e6
    finally:
        gc.enable()


async def per_call_us_async(
    call: Callable[[str], Awaitable[object]], tokens: Iterator[str], number: int
) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            assert await call(next(tokens)) is not None
        return (time.perf_counter() - start) / number * 1e6
    finally:
        gc.enable()


def report(title: str, samples: dict[str, list[float]]) -> None:
    floor = statistics.median(samples["httpx pooled"])
    print(f"  {title}")
    for name, values in samples.items():
        value = statistics.median(values)
        print(f"    {name:<18}{value:8.0f} µs/miss   {value / floor:5.2f}x pooled httpx")


def measure(label: str, url: str, tokens: list[str], verify: Any, rounds: int, number: int) -> None:
    supply = iter(tokens)  # every call a token never seen: a miss for authgate too
    contenders = sync_contenders(url, verify)
    for call in contenders.values():  # warm up: connect, load the CA, fill the pools
        per_call_us(call, supply, 20)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            samples[name].append(per_call_us(call, supply, number))
    print(f"{label}, median of {rounds} rounds x {number} distinct tokens")
    report("sync", samples)

    async def run_async() -> dict[str, list[float]]:
        contenders = async_contenders(url, verify)
        for call in contenders.values():
            await per_call_us_async(call, supply, 20)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, call in contenders.items():
                samples[name].append(await per_call_us_async(call, supply, number))
        return samples

    report("async", asyncio.run(run_async()))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()
    # sync: 3 contenders, async: 2; each warms up with 20
    needed = (3 + 2) * (args.rounds * args.number + 20)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        ca = PrivateCA(Path(folder))
        trust = ssl.create_default_context(cafile=str(ca.ca_cert))
        for label, certs, verify in (
            ("HTTP", None, True),
            ("TLS, private CA", (str(ca.server_cert), str(ca.server_key)), trust),
        ):
            ours, theirs = context.Pipe()
            server = context.Process(target=serve, args=(theirs, certs, needed), daemon=True)
            server.start()
            url, tokens = ours.recv()
            try:
                measure(label, url, tokens, verify, args.rounds, args.number)
            finally:
                ours.send("stop")
                server.join(10)


if __name__ == "__main__":
    main()
