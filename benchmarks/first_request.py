"""A first-seen token through the middleware, and what a cached token costs in memory.

In-process, rounds interleaved, median µs per request over a bare Starlette app:
  floor        split, decode, parse both JSON objects, the bare ``cryptography`` RS256 check
  verify       ``JWTVerifier.verify`` alone (no middleware)
  authgate     ``AuthGateMiddleware``, a new RS256 token every request
  starlette    Starlette's ``AuthenticationMiddleware`` with a PyJWT backend
  basehttp     a ``BaseHTTPMiddleware`` doing the same PyJWT decode

The figure of merit is the middleware's cost around its verify: ``authgate - bare - floor``.

Memory: ``tracemalloc`` over admitting N tokens of about 650 bytes with typical claims into the
verified-token cache (the revocation index included), per entry, against a plain
``token -> claims`` dict of the same tokens; and the cache's own estimate against the traced
bytes.

Run: ``python benchmarks/first_request.py [--rounds N] [--number N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from authgate import Authenticator, CacheLimits, JWTProvider, JWTVerifier, KeySet  # noqa: E402
from authgate.testing import SigningKey, TokenFactory  # noqa: E402
from bench_apps import ISSUER, build_apps  # noqa: E402
from middleware import per_request_us  # noqa: E402
from verify import floor_for  # noqa: E402

CLAIMS = {  # with sub, iat, exp, jti and iss: an RS256 token of about 650 bytes
    "scope": "openid profile email orders:read",
    "email": "jane.doe@example.com",
}


def mint_many(factory: TokenFactory, count: int, prefix: str) -> list[str]:
    return [factory.mint(f"{prefix}-{i:08d}", jti=f"{i:016x}", **CLAIMS) for i in range(count)]


def per_call_us(function: Any, tokens: list[str]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for token in tokens:
            function(token)
        return (time.perf_counter() - start) / len(tokens) * 1e6
    finally:
        gc.enable()


async def timing(rounds: int, number: int) -> dict[str, float]:
    key = SigningKey("RS256", kid="bench")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    jwk = key.public_jwk()
    apps = build_apps(jwk)
    verifier = JWTVerifier(KeySet.from_jwk(jwk), algorithms=["RS256"], issuer=ISSUER)
    floor = floor_for("RS256", key)
    contenders = ("bare", "floor", "verify", "authgate", "starlette", "basehttp")
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    warm = mint_many(factory, 20, "warm")
    for name in ("bare", "authgate", "starlette", "basehttp"):
        await per_request_us(apps[name], warm, 20)
    per_call_us(verifier.verify, warm)
    for r in range(rounds):
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for name in order:
            tokens = mint_many(factory, number, f"r{r}-{name}")
            if name == "floor":
                samples[name].append(per_call_us(floor, tokens))
            elif name == "verify":
                samples[name].append(per_call_us(verifier.verify, tokens))
            else:
                samples[name].append(await per_request_us(apps[name], tokens, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def memory(count: int) -> dict[str, float]:
    key = SigningKey("RS256", kid="bench")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    verifier = JWTVerifier(key.keyset(), algorithms=["RS256"], issuer=ISSUER)
    tokens = mint_many(factory, count, "user")
    auth = Authenticator([JWTProvider("bench", verifier)], cache=CacheLimits(max_entries=count + 1))
    headers = [{"authorization": "Bearer " + token} for token in tokens]
    for header in headers[:10]:  # warm: memos, interned names
        auth.authenticate(header)
    assert auth.cache is not None
    auth.cache.clear()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for header in headers:
        auth.authenticate(header)
    gc.collect()
    cached = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    estimate = auth.cache.size_bytes
    plain: dict[str, Any] = {}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for token in tokens:  # a new string each, as a request's header brings
        plain[token.encode().decode()] = verifier.verify(token)
    gc.collect()
    reference = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {
        "token_bytes": statistics.mean(len(t) for t in tokens),
        "entry": cached / count,
        "plain": reference / count,
        "estimate": estimate / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=400)
    parser.add_argument("--entries", type=int, default=5000)
    args = parser.parse_args()
    result = asyncio.run(timing(args.rounds, args.number))
    bare, floor = result["bare"], result["floor"]
    print(f"first-seen RS256 token, in-process, {args.rounds} rounds x {args.number}, median µs\n")
    print(f"{'':<12}{'µs':>8}{'over bare':>12}{'over bare + floor':>20}")
    for name, value in result.items():
        if name == "bare":
            print(f"{name:<12}{value:>8.1f}")
        elif name in ("floor", "verify"):
            print(f"{name:<12}{value:>8.1f}{'':>12}{value - floor:>+20.1f}")
        else:
            print(f"{name:<12}{value:>8.1f}{value - bare:>12.1f}{value - bare - floor:>+20.1f}")
    mem = memory(args.entries)
    print(f"\nmemory, {args.entries} cached tokens of {mem['token_bytes']:.0f} bytes")
    print(f"  a cached entry (index included)  {mem['entry']:>7.0f} bytes")
    print(f"  a plain token -> claims dict     {mem['plain']:>7.0f} bytes")
    print(
        f"  the cache's estimate             {mem['estimate']:>7.0f} bytes "
        f"({mem['estimate'] / mem['entry'] - 1:+.0%} of traced)"
    )


if __name__ == "__main__":
    main()
