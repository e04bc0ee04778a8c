"""Provider costs: a remote-only provider's cache, and the API-key check.

1. A remote-only provider (RFC 7662 introspection against a real server on 127.0.0.1), driven
   in-process through AuthGateMiddleware with 10 distinct tokens repeating: upstream calls per
   1,000 requests, requests/s, and the per-request cost of its cache hits next to a locally
   verified JWT's cache hits (the same fast path: they should match).
2. The API-key check: APIKeyRing.lookup (hit and miss) against the floor of one SHA-256 of the
   key plus one dict lookup, and the whole Authenticator path for an x-api-key.

Run: ``make bench`` or ``python benchmarks/providers.py``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    JWTProvider,
    JWTVerifier,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import FakeIntrospection, TokenFactory
from middleware import per_request_us


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity})


def app_with(auth: Authenticator) -> Any:
    return AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), auth)


async def remote_section(rounds: int, number: int) -> None:
    with FakeIntrospection() as idp:
        provider = IntrospectionProvider(
            "idp", idp.introspection_url, auth=ClientAuth.basic(idp.client_id, idp.client_secret)
        )
        remote_app = app_with(Authenticator([provider]))
        remote_tokens = [idp.issue(f"user-{i}", scope="read") for i in range(10)]
        factory = TokenFactory("RS256", issuer="https://issuer.test")
        local_app = app_with(
            Authenticator(
                [
                    JWTProvider(
                        "local",
                        JWTVerifier(
                            factory.keyset(), algorithms=["RS256"], issuer="https://issuer.test"
                        ),
                    )
                ]
            )
        )
        local_tokens = [factory.mint(f"user-{i}") for i in range(10)]

        started = time.perf_counter()
        total = 0
        for _ in range(5):
            await per_request_us(remote_app, remote_tokens, 1000)
            total += 1000
        elapsed = time.perf_counter() - started
        calls = idp.calls(idp.PATH)
        print("remote-only provider (RFC 7662 introspection), 10 distinct tokens repeating\n")
        print(f"  requests                 {total}")
        per_thousand = calls / total * 1000
        print(
            f"  upstream calls           {calls}  ({per_thousand:.1f} per 1,000 requests; TTL 30 s)"
        )
        print(f"  in-process requests/s    {total / elapsed:,.0f}")

        await per_request_us(local_app, local_tokens, 100)
        samples: dict[str, list[float]] = {"remote": [], "local": []}
        for _ in range(rounds):
            samples["remote"].append(await per_request_us(remote_app, remote_tokens, number))
            samples["local"].append(await per_request_us(local_app, local_tokens, number))
        remote_us, local_us = (statistics.median(samples[k]) for k in ("remote", "local"))
        print(f"  cache hit, remote principal   {remote_us:6.2f} µs/request")
        ratio = remote_us / local_us
        print(f"  cache hit, local JWT          {local_us:6.2f} µs/request   ratio {ratio:.2f}x\n")


def timed(fn: Any, arg: Any, number: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn(arg)
        return (time.perf_counter() - start) / number * 1e6
    finally:
        gc.enable()


def api_key_section(rounds: int, number: int) -> None:
    ring = APIKeyRing(prefixes=("sk_live_",))
    keys = [f"sk_live_{i:04d}_4f9c2b7e1d8a6c3b5e0f9a2d" for i in range(1000)]
    for i, key in enumerate(keys):
        ring.add(key, subject=f"svc-{i}", scopes=["read"])
    table = {hashlib.sha256(k.encode()).digest(): k for k in keys}
    hit, miss = keys[500], "sk_live_9999_000000000000000000000000"
    sha256 = hashlib.sha256

    def floor(key: str) -> object:
        return table.get(sha256(key.encode()).digest())

    auth = Authenticator([APIKeyProvider("keys", ring)])
    headers = {"x-api-key": hit}
    contenders = {
        "floor: sha256 + dict.get": (floor, hit),
        "ring.lookup (hit)": (ring.lookup, hit),
        "ring.lookup (miss)": (ring.lookup, miss),
        "Authenticator.authenticate": (auth.authenticate, headers),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (fn, arg) in contenders.items():
            samples[name].append(timed(fn, arg, number))
    base = statistics.median(samples["floor: sha256 + dict.get"])
    print(f"API-key check, 1,000 keys in the ring: median of {rounds} rounds\n")
    for name, values in samples.items():
        value = statistics.median(values)
        print(f"  {name:<30}{value:7.3f} µs  {value / base:5.2f}x the floor")


def main() -> None:
    asyncio.run(remote_section(rounds=7, number=2000))
    api_key_section(rounds=9, number=20000)


if __name__ == "__main__":
    main()
