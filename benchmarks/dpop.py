"""A DPoP request whose token is cached, against a cached Bearer hit and the proof's floor.

In-process, rounds interleaved, median µs per request through ``AuthGateMiddleware`` over a
bare Starlette app (ES256 token, ES256 proofs, a fresh proof every request as clients send):
  bare         the Starlette app alone
  bearer hit   a cached Bearer token (the hit path)
  dpop         a cached DPoP-bound token with a new proof each request (the full path)
  floor        the proof at the floor: split, decode, parse both JSON objects, the bare
               ``cryptography`` ES256 check with a key built beforehand
  floor + hit  both in each request: the floor's check of the request's proof, then the
               cached Bearer hit (what "a hit plus the proof's check" costs in one request)

The figure of merit (issue 19): ``(dpop - bare) / ((bearer hit - bare) + floor)``, at most
1.15: a DPoP request costs a cached hit plus the proof's signature check, and little more.
The floor is timed alone, in a tight loop; run in the request, between the app's code, the
same check costs more (the caches the app warmed are cold again): the second ratio,
``(dpop - bare) / (floor + hit - bare)``, compares with that.

With ``--instructions``, the same contenders counted in CPU instructions under valgrind's
callgrind (each run N and 2N times in a new process, the difference divided by N): the
repeatable figure on a noisy machine. The two measures differ by design: Python's
instructions run slower than the signature check's, which a tight loop also keeps hot.

Run: ``python benchmarks/dpop.py [--rounds N] [--number N] [--instructions]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from authgate import Authenticator, JWTProvider, JWTVerifier  # noqa: E402
from authgate.asgi import AuthGateMiddleware  # noqa: E402
from authgate.testing import DPoPClient, TokenFactory  # noqa: E402
from middleware import Sink, fresh_scope, receive, scope_for  # noqa: E402
from verify import floor_for  # noqa: E402

ISSUER = "https://login.example.com"
URI = "http://api.example.com/whoami"  # what scope_for's request addresses


async def whoami(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def dpop_scope(token: str, proof: str) -> dict[str, Any]:
    scope = scope_for(token)
    headers = [(n, v) for n, v in scope["headers"] if n != b"authorization"]
    headers += [(b"authorization", b"DPoP " + token.encode()), (b"dpop", proof.encode())]
    scope["headers"] = headers
    return scope


async def per_request_us(
    app: Any, templates: list[dict[str, Any]], floor: Any = None, proofs: Sequence[str] = ()
) -> float:
    """µs per request through ``app``; with ``floor``, each request first runs it on the
    next of ``proofs`` (the floor's check and the hit in one request)."""
    sink = Sink()
    checks = iter(proofs)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for template in templates:
            if floor is not None:
                floor(next(checks))
            await app(fresh_scope(template), receive, sink)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    assert sink.status == 200, f"unexpected status {sink.status}"
    return elapsed / len(templates) * 1e6


def floor_us(check: Any, proofs: list[str]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for proof in proofs:
            check(proof)
        return (time.perf_counter() - start) / len(proofs) * 1e6
    finally:
        gc.enable()


CONTENDERS = ("bare", "bearer hit", "dpop", "floor", "floor + hit")


class Bench:
    """The apps, tokens and proofs every measure shares (each token cached before counting)."""

    def __init__(self) -> None:
        factory = TokenFactory("ES256", issuer=ISSUER, ttl=3600)
        verifier = JWTVerifier(factory.keyset(), algorithms=["ES256"], issuer=ISSUER)
        self.bare = Starlette(routes=[Route("/whoami", whoami)])
        self.guarded = AuthGateMiddleware(
            self.bare, Authenticator([JWTProvider("bench", verifier)])
        )
        self.client = DPoPClient("ES256")
        self.bearer_token = factory.mint("bearer-user", scope="orders:read")
        self.bound_token = factory.mint("dpop-user", scope="orders:read", cnf=self.client.cnf)
        self.floor = floor_for("ES256", self.client.key)

    def proofs(self, number: int) -> list[str]:
        return [self.client.proof("GET", URI, self.bound_token) for _ in range(number)]

    def scopes(self, proofs: list[str]) -> list[dict[str, Any]]:
        return [dpop_scope(self.bound_token, proof) for proof in proofs]

    async def warm(self) -> None:
        await per_request_us(self.guarded, [scope_for(self.bearer_token)])
        await per_request_us(self.guarded, [dpop_scope(self.bound_token, self.proofs(1)[0])])

    async def run(self, name: str, proofs: list[str], scopes: list[dict[str, Any]]) -> float:
        """µs per request of contender ``name``, one request (or check) per proof; ``scopes``:
        the DPoP requests carrying them, built beforehand."""
        bearer = [scope_for(self.bearer_token)] * len(proofs)
        if name == "bare":
            return await per_request_us(self.bare, bearer)
        if name == "bearer hit":
            return await per_request_us(self.guarded, bearer)
        if name == "dpop":
            return await per_request_us(self.guarded, scopes)
        if name == "floor":
            return floor_us(self.floor, proofs)
        return await per_request_us(self.guarded, bearer, self.floor, proofs)


async def measure(rounds: int, number: int) -> dict[str, list[float]]:
    bench = Bench()
    await bench.warm()
    results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(rounds):
        proofs = bench.proofs(number)
        scopes = bench.scopes(proofs)
        for name in CONTENDERS:
            results[name].append(await bench.run(name, proofs, scopes))
    return results


async def drive(name: str, number: int, total: int) -> None:
    """Under callgrind: the setup for ``total`` requests, then ``number`` of them."""
    bench = Bench()
    await bench.warm()
    proofs = bench.proofs(total)  # as many in every run: the setup cancels out
    scopes = bench.scopes(proofs)
    await bench.run(name, proofs[:number], scopes[:number])


def instructions(name: str, number: int, total: int) -> int:
    out = subprocess.run(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",  # noqa: S607
         sys.executable, __file__, "--drive", name, str(number), str(total)],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True,
    )  # fmt: skip
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if found is None:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def count(number: int) -> dict[str, float]:
    """Instructions per request of each contender: N and 2N requests, the difference over N."""
    return {
        name: (instructions(name, 2 * number, 2 * number) - instructions(name, number, 2 * number))
        / number
        for name in CONTENDERS
    }


def report(median: dict[str, float], unit: str) -> None:
    for name, value in median.items():
        print(f"  {name:<11} {value:12,.2f}")
    hit = median["bearer hit"] - median["bare"]
    dpop = median["dpop"] - median["bare"]
    print(f"  dpop over bare: {dpop:,.2f} {unit}; bearer hit over bare: {hit:,.2f} {unit}")
    print(f"  ratio (dpop - bare) / ((hit - bare) + floor): {dpop / (hit + median['floor']):.3f}")
    both = median["floor + hit"] - median["bare"]
    print(f"  ratio (dpop - bare) / (floor + hit - bare), in one request: {dpop / both:.3f}")


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        asyncio.run(drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--number", type=int, default=None, help="2000; 200 with --instructions")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    args = parser.parse_args()
    python = sys.version.split()[0]
    if args.instructions:
        number = args.number or 200
        print(f"instructions per request (callgrind; N={2 * number} minus N={number}, "
              f"Python {python})")  # fmt: skip
        report(count(number), "instructions")
        return
    number = args.number or 2000
    results = asyncio.run(measure(args.rounds, number))
    print(f"median µs per request, {args.rounds} rounds of {number} (Python {python})")
    report({name: statistics.median(values) for name, values in results.items()}, "µs")


if __name__ == "__main__":
    main()
