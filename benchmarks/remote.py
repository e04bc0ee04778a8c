"""A cache miss through IntrospectionProvider, next to a pooled httpx client doing the same.

The introspection endpoint (authgate.testing.FakeIntrospection) runs in its own process on
127.0.0.1, once over plain HTTP and once over TLS with a private CA. Each contender sends
one RFC 7662 request per distinct token and reads the JSON answer:

- ``provider.verify``: ``IntrospectionProvider.verify`` with a token never seen before (a
  miss: the remote client's result cache, single flight and breaker, the call on the
  provider's pooled client, the answer's checks, the principal): the target row;
- ``authenticate``: the whole ``Authenticator.authenticate`` miss around it (extract, the
  cache lookup, routing, revocation check, and the insertion into the verified-token cache);
- ``httpx pooled``: one ``httpx.Client`` kept open, POSTing the same form with the same
  Basic credentials and parsing the JSON (the floor: what any pooled client pays);
- ``httpx new client``: a new ``httpx.Client`` per call (sharing one TLS context), as
  authgate did before pooling.

Rounds are interleaved; medians of per-call microseconds, and ratios to the pooled client.
Sync and async (one event loop, ``httpx.AsyncClient``) both.

Run: ``python benchmarks/remote.py [--rounds N] [--number N]``; ``--instructions`` counts the
client's instructions per miss under callgrind instead (repeatable where wall clock is noise).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import multiprocessing
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from authgate import Authenticator, ClientAuth, Credential, IntrospectionProvider, Upstream
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


def provider_for(url: str, verify: Any) -> IntrospectionProvider:
    upstream = Upstream(verify=verify) if verify is not True else None
    return IntrospectionProvider(
        "idp", url, auth=ClientAuth.basic(CLIENT_ID, CLIENT_SECRET), upstream=upstream
    )


def sync_contenders(url: str, verify: Any) -> dict[str, Callable[[str], object]]:
    provider = provider_for(url, verify)
    auth = Authenticator([provider_for(url, verify)])
    pooled = httpx.Client(verify=verify)
    headers = {"authorization": basic()}

    def through_provider(token: str) -> object:
        return provider.verify(Credential("bearer", token))

    def through_authgate(token: str) -> object:
        return auth.authenticate({"authorization": f"Bearer {token}"})

    def through_pooled(token: str) -> object:
        answer = pooled.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    shared = httpx.create_ssl_context() if verify is True else verify  # as authgate shared one

    def through_new_client(token: str) -> object:
        with httpx.Client(verify=shared) as client:
            answer = client.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    return {
        "provider.verify": through_provider,
        "authenticate": through_authgate,
        "httpx pooled": through_pooled,
        "httpx new client": through_new_client,
    }


def async_contenders(url: str, verify: Any) -> dict[str, Callable[[str], Awaitable[object]]]:
    provider = provider_for(url, verify)
    auth = Authenticator([provider_for(url, verify)])
    pooled = httpx.AsyncClient(verify=verify)
    headers = {"authorization": basic()}

    async def through_provider(token: str) -> object:
        return await provider.verify_async(Credential("bearer", token))

    async def through_authgate(token: str) -> object:
        return await auth.authenticate_async({"authorization": f"Bearer {token}"})

    async def through_pooled(token: str) -> object:
        answer = await pooled.post(url, data={"token": token}, headers=headers)
        assert answer.status_code == 200
        return answer.json()

    return {
        "provider.verify": through_provider,
        "authenticate": through_authgate,
        "httpx pooled": through_pooled,
    }


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


def start_server(
    certs: tuple[str, str] | None, tokens: int
) -> tuple[str, list[str], Connection, Any]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=serve, args=(theirs, certs, tokens), daemon=True)
    server.start()
    url, issued = ours.recv()
    return url, issued, ours, server


def child(contender: str, folder: str | None, number: int) -> None:
    """Under callgrind: ``number`` misses of one contender (the server runs untraced)."""
    certs = (f"{folder}/server.crt", f"{folder}/server.key") if folder else None
    verify: Any = ssl.create_default_context(cafile=f"{folder}/ca.crt") if folder else True
    url, tokens, pipe, server = start_server(certs, number + 20)
    call = sync_contenders(url, verify)[contender]
    for token in tokens:
        call(token)
    pipe.send("stop")
    server.join(10)


def collected(contender: str, folder: str | None, number: int) -> int:
    command = [sys.executable, __file__, "--child", contender, "--number", str(number)]
    if folder:
        command += ["--folder", folder]
    done = subprocess.run(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found.group(1))


def instruction_counts(number: int) -> None:
    """Instructions per miss, client side only: (runs of 2N - runs of N) / N."""
    print(f"instructions per miss (callgrind, client process only, {number} and {2 * number})")
    with tempfile.TemporaryDirectory() as folder:
        PrivateCA(Path(folder))
        for label, where in (("HTTP", None), ("TLS, private CA", folder)):
            counts = {
                name: (collected(name, where, 2 * number) - collected(name, where, number)) / number
                for name in ("provider.verify", "authenticate", "httpx pooled")
            }
            floor = counts["httpx pooled"]
            print(f"  {label}")
            for name, value in counts.items():
                print(
                    f"    {name:<18}{value / 1e6:8.3f} M/miss   {value / floor:5.2f}x pooled httpx"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--instructions", action="store_true", help="callgrind counts instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.number)
        return
    if args.instructions:
        instruction_counts(args.number)
        return
    # sync: 4 contenders, async: 3; each warms up with 20
    needed = (4 + 3) * (args.rounds * args.number + 20)
    with tempfile.TemporaryDirectory() as folder:
        ca = PrivateCA(Path(folder))
        trust = ssl.create_default_context(cafile=str(ca.ca_cert))
        for label, certs, verify in (
            ("HTTP", None, True),
            ("TLS, private CA", (str(ca.server_cert), str(ca.server_key)), trust),
        ):
            url, tokens, ours, server = start_server(certs, needed)
            try:
                measure(label, url, tokens, verify, args.rounds, args.number)
            finally:
                ours.send("stop")
                server.join(10)


if __name__ == "__main__":
    main()
