"""Middleware cost: authgate vs Starlette's own auth with PyJWT, in-process and end to end.

In-process: each app is driven through direct ASGI calls (no sockets), rounds interleaved,
median µs per request:
  bare         the Starlette app alone
  noop         an empty pass-through middleware (the cost of any middleware at all)
  minimal      find the Authorization header in a Python loop, one dict lookup
  hit          authgate, the same token every request (verified-token cache hit)
  first-seen   authgate, a new token every request (full RS256 verification)
  starlette    Starlette's AuthenticationMiddleware with a PyJWT backend (decode per request)
  basehttp     a BaseHTTPMiddleware doing the same PyJWT decode

End to end (``--e2e``): each app served by uvicorn in its own process on 127.0.0.1, all three
at once, loaded by ``benchmarks/load.py`` in short bursts interleaved between the apps;
median req/s and p50/p99 latency.

Run: ``make bench`` or ``python benchmarks/middleware.py [--e2e] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from authgate.testing import SigningKey, TokenFactory  # noqa: E402
from bench_apps import ISSUER, build_apps  # noqa: E402


def scope_for(token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/whoami",
        "raw_path": b"/whoami",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"api.example.com"),
            (b"user-agent", b"bench/1.0"),
            (b"accept", b"application/json"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"authorization", b"Bearer " + token.encode()),
            (b"x-request-id", b"4f1c2b9e-0d7a-4c55-9e0b-1a2b3c4d5e6f"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def fresh_scope(template: dict[str, Any]) -> dict[str, Any]:
    """A new scope with newly allocated header values, as a server builds for each request.

    (Reusing the template's bytes would hand every request a cached hash of the token: a
    saving no server gives, which flatters any middleware that looks the header up.)
    """
    scope = dict(template)
    scope["headers"] = [(name, bytes(bytearray(value))) for name, value in template["headers"]]
    scope["state"] = {}  # uvicorn gives every request a copy of the lifespan state
    return scope


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class Sink:
    def __init__(self) -> None:
        self.status = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


async def per_request_us(app: Any, tokens: list[str], number: int) -> float:
    # Each request gets a fresh scope with new header bytes, as a server builds one per request;
    # they are as hot in CPU cache as a just-parsed request's. (Pre-building thousands of
    # scopes instead makes every header read a RAM miss, charging header-reading middleware
    # for an artifact of the harness.)
    sink = Sink()
    templates = [scope_for(token) for token in tokens]
    count = len(templates)
    gc.collect()
    gc.disable()  # as timeit does: a collection must not land on whichever app runs next
    try:
        start = time.perf_counter()
        for i in range(number):
            await app(fresh_scope(templates[i % count]), receive, sink)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    assert sink.status == 200, f"unexpected status {sink.status}"
    return elapsed / number * 1e6


async def in_process(rounds: int, number: int) -> dict[str, float]:
    key = SigningKey("RS256", kid="bench")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    one = [factory.mint("user-1", scope="orders:read")]
    apps = build_apps(key.public_jwk(), one[0])
    fresh = [factory.mint(f"user-{i}", scope="orders:read") for i in range(number * rounds + 1)]
    plan = {
        "bare": (apps["bare"], one),
        "noop": (apps["noop"], one),
        "minimal": (apps["minimal"], one),
        "hit": (apps["authgate"], one),
        "first-seen": (apps["authgate"], fresh),
        "starlette": (apps["starlette"], one),
        "basehttp": (apps["basehttp"], one),
    }
    for app, tokens in plan.values():  # warm up
        await per_request_us(app, tokens[:1], 20)
    samples: dict[str, list[float]] = {name: [] for name in plan}
    for r in range(rounds):
        for name, (app, tokens) in plan.items():
            if name == "first-seen":
                tokens = fresh[r * number + 1 : (r + 1) * number + 1]
            samples[name].append(await per_request_us(app, tokens, number))
    return {name: statistics.median(values) for name, values in samples.items()}


def end_to_end(seconds: float, connections: int, rounds: int) -> dict[str, dict[str, float]]:
    """All three servers up at once; short load bursts interleaved; medians per app.

    Loading each app once, one after the other, lets the machine's drift land on one app;
    interleaving rounds spreads it over all of them.
    """
    key = SigningKey("RS256", kid="bench")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    token = factory.mint("user-1", scope="orders:read")
    names = ("bare", "authgate", "starlette")
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        jwk_path = Path(tmp) / "jwk.json"
        jwk_path.write_text(json.dumps(key.public_jwk()))
        env = {**os.environ, "AUTHGATE_BENCH_JWK": str(jwk_path), "PYTHONPATH": str(HERE)}
        servers = {name: start_server(name, env) for name in names}
        try:
            for _, port in servers.values():  # warm up each once
                load(port, token, 1.0, connections)
            order = list(servers)
            for r in range(rounds):
                for name in order[r % 3 :] + order[: r % 3]:  # rotate: no app always goes first
                    process, port = servers[name]
                    cpu_before = cpu_seconds(process.pid)
                    result = load(port, token, seconds, connections)
                    result["cpu_us"] = (
                        (cpu_seconds(process.pid) - cpu_before) / result["requests"] * 1e6
                    )
                    samples[name].append(result)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(10)
    return {
        name: {
            metric: statistics.median(sample[metric] for sample in runs)
            for metric in ("rps", "p50_ms", "p99_ms", "cpu_us")
        }
        for name, runs in samples.items()
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", f"bench_apps:{name}", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--lifespan", "off"],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline:
                server.terminate()
                raise RuntimeError(f"uvicorn for {name} did not start") from None
            time.sleep(0.05)


def load(port: int, token: str, seconds: float, connections: int) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603
        [sys.executable, str(HERE / "load.py"), "--port", str(port), "--token", token,
         "--seconds", str(seconds), "--connections", str(connections), "--warmup", "0"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--number", type=int, default=2000, help="requests per round")
    parser.add_argument("--e2e", action="store_true", help="also run the uvicorn end-to-end load")
    parser.add_argument("--seconds", type=float, default=3.0, help="load time per e2e burst")
    parser.add_argument("--e2e-rounds", type=int, default=5, help="interleaved bursts per app")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    r = asyncio.run(in_process(args.rounds, args.number))
    print(f"in-process ASGI calls: median of {args.rounds} rounds x {args.number} requests\n")
    print(f"{'app':<44}{'µs/request':>11}{'vs bare':>9}")
    print("-" * 64)
    labels = {
        "bare": "bare Starlette app",
        "noop": "  reference: empty pass-through",
        "minimal": "  reference: header + dict lookup, in Python",
        "hit": "authgate, cache hit",
        "first-seen": "authgate, first-seen RS256 token",
        "starlette": "AuthenticationMiddleware + PyJWT",
        "basehttp": "BaseHTTPMiddleware + PyJWT",
    }
    for name, label in labels.items():
        print(f"{label:<44}{r[name]:>11.2f}{r[name] / r['bare']:>8.2f}x")
    print(
        f"\nauthgate's own cost on a cache hit: {r['hit'] - r['bare']:.2f} µs per request "
        f"(a header loop and one dict lookup in Python: {r['minimal'] - r['bare']:.2f} µs)"
    )

    if args.e2e:
        e = end_to_end(args.seconds, args.connections, args.e2e_rounds)
        print(
            f"\nend to end: uvicorn (1 process each) on 127.0.0.1, {args.connections} keep-alive "
            f"connections; median of {args.e2e_rounds} interleaved {args.seconds:.0f} s bursts\n"
        )
        print(
            f"{'app':<36}{'req/s':>9}{'vs bare':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'server CPU µs/req':>19}{'vs bare':>9}"
        )
        print("-" * 100)
        e2e_labels = {
            "bare": "bare Starlette app",
            "authgate": "authgate, cache hit",
            "starlette": "AuthenticationMiddleware + PyJWT",
        }
        for name, label in e2e_labels.items():
            x = e[name]
            print(
                f"{label:<36}{x['rps']:>9.0f}{x['rps'] / e['bare']['rps']:>8.2f}x"
                f"{x['p50_ms']:>9.2f}{x['p99_ms']:>9.2f}"
                f"{x['cpu_us']:>19.1f}{x['cpu_us'] / e['bare']['cpu_us']:>8.3f}x"
            )


if __name__ == "__main__":
    main()
