"""The fleet, over a real Redis on 127.0.0.1, in one run:

1. Revocation propagation: N uvicorn workers (tests/fleet_app.py: Back Office tokens, a
   RedisStore); a cached token is signed out through one worker, and for each other worker the
   time from the revoke call's return to the moment that worker applied the revocation is
   measured inside the workers (wall clocks of one machine; the client's polling does not
   count). 2 and 4 workers; p50 and p99.
2. The cache-hit cost with a store configured against without (in-process ASGI, interleaved
   rounds, medians): the store is not on the hit path.
3. A new worker (a fresh interpreter) loading 1,000,000 revocations: seconds and RSS growth.
4. Upstream calls for one new opaque token sent to 4 workers at once, and JWKS fetches for
   1,000 unknown-kid tokens spread over 4 workers (tests/fleet_remote_app.py).

Run: ``python benchmarks/fleet.py [--rounds N]`` (needs redis-server; ``make test`` installs it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fleet_app import ISSUER, SECRET  # noqa: E402

from authgate.testing import SigningKey, TokenFactory, free_port, wait_for_port  # noqa: E402


def propagation(workers: int, rounds: int, redis_url: str) -> list[tuple[float, float]]:
    """Per other worker and sign-out: (seconds from the revoke call's return to that worker
    applying it, negative when it applied before the call returned; seconds from the call's
    start)."""
    import os

    ports = [free_port() for _ in range(workers)]
    env = {**os.environ, "AUTHGATE_REDIS_URL": redis_url}
    processes = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.fleet_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    factory = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)
    samples: list[tuple[float, float]] = []
    try:
        for port in ports:
            wait_for_port(port)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for port in ports]
        for i in range(rounds):
            token = factory.mint(f"user-{i}", iat=int(time.time()) - 5)
            headers = {"authorization": f"Bearer {token}"}
            for client in clients:  # cached everywhere
                assert client.get("/whoami", headers=headers).status_code == 200
            answer = clients[0].post("/signout", content=token).json()
            for client in clients[1:]:
                while (
                    applied := client.post("/applied", content=token).json()["applied_at"]
                ) is None:
                    time.sleep(0.0005)
                # inside the workers: the client's polling does not count
                samples.append((applied - answer["returned_at"], applied - answer["started_at"]))
        for client in clients:
            client.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    return samples


LOAD_PROGRAM = """
import sys, time
from authgate import Authenticator, BackOfficeProvider, KeySet
from authgate.redis import RedisStore
from tests.fleet_app import ISSUER, SECRET

def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024

provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
store = RedisStore(sys.argv[1], timeout=2.0, startup_timeout=120)
auth = Authenticator([provider], store=store)
before, started = rss(), time.perf_counter()
store.ensure_started()
print(time.perf_counter() - started, rss() - before, len(auth.denylist))
auth.close()
"""


def million_load(
    redis_url: str, entries: int = 1_000_000, runs: int = 3
) -> list[tuple[float, float]]:
    """A new worker (a fresh interpreter) loading ``entries`` revocations: seconds and RSS
    growth in MiB, per run."""
    import hashlib
    import os

    import redis as redis_py

    from authgate.redis import RedisStore

    client = redis_py.Redis.from_url(redis_url)
    key, until = RedisStore(redis_url).denylist_key, time.time() + 86_000
    for start in range(0, entries, 20_000):
        members = (
            hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + 20_000)
        )
        client.zadd(key, {"t:" + member: until for member in members})
    client.close()
    results = []
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-c", LOAD_PROGRAM, redis_url],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert int(out[2]) >= entries, out
        results.append((float(out[0]), float(out[1])))
    client = redis_py.Redis.from_url(redis_url)
    client.delete(key)  # the next measurements start new workers: not on a million entries
    client.close()
    return results


def hit_cost(redis_url: str, rounds: int = 9, number: int = 20_000) -> tuple[float, float]:
    """Median µs per cache hit, in-process, without and with a store."""
    import asyncio

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from authgate import Authenticator, BackOfficeProvider, KeySet
    from authgate.asgi import AuthGateMiddleware
    from authgate.redis import RedisStore
    from middleware import per_request_us

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    authenticators: list[Authenticator] = []

    def app(store: RedisStore | None) -> object:
        provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
        auth = Authenticator([provider], store=store)
        authenticators.append(auth)
        return AuthGateMiddleware(Starlette(routes=[Route("/whoami", ok)]), auth)

    factory = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)
    tokens = [factory.mint("ada", iat=int(time.time()) - 5)]
    plain, shared = app(None), app(RedisStore(redis_url))

    async def run() -> tuple[float, float]:
        await per_request_us(plain, tokens, 100)
        await per_request_us(shared, tokens, 100)  # the first miss starts the store
        without, with_store = [], []
        for _ in range(rounds):
            without.append(await per_request_us(plain, tokens, number))
            with_store.append(await per_request_us(shared, tokens, number))
        return statistics.median(without), statistics.median(with_store)

    try:
        return asyncio.run(run())
    finally:
        for auth in authenticators:
            auth.close()


def fan_out(redis_url: str, workers: int = 4) -> tuple[int, int]:
    """(upstream calls for one new opaque token on every worker at once, JWKS fetches for
    1,000 unknown-kid tokens spread over the workers after a warm-up)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from authgate.testing import FakeIntrospection, LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        env = {
            **os.environ,
            "AUTHGATE_REDIS_URL": redis_url,
            "AUTHGATE_INTROSPECTION_URL": idp.introspection_url,
            "AUTHGATE_CLIENT_ID": idp.client_id,
            "AUTHGATE_CLIENT_SECRET": idp.client_secret,
            "AUTHGATE_JWKS_URL": issuer.jwks_url,
            "AUTHGATE_ISSUER": issuer.url,
            "AUTHGATE_STORE_SECRET": "the bench fleet's secret, thirty-two bytes or more",
        }
        ports = [free_port() for _ in range(workers)]
        processes = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.fleet_remote_app:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            for port in ports:
                wait_for_port(port)
            bases = [f"http://127.0.0.1:{port}/whoami" for port in ports]

            def get(i: int, token: str) -> int:
                headers = {"authorization": f"Bearer {token}"}
                return httpx.get(bases[i % workers], headers=headers).status_code

            for i in range(workers):  # warm: each worker's keys (one fetch fleet-wide)
                assert get(i, issuer.mint("warm")) == 200
            opaque = idp.issue("ada")
            with ThreadPoolExecutor(max_workers=4 * workers) as pool:
                codes = list(pool.map(lambda i: get(i, opaque), range(4 * workers)))
            assert codes == [200] * (4 * workers), codes
            calls = idp.calls(idp.PATH)
            before = issuer.jwks_requests
            strangers = [
                TokenFactory(key=SigningKey("ES256", kid=f"unknown-{i}"), issuer=issuer.url)
                for i in range(10)
            ]
            flood = [strangers[i % 10].mint(f"u{i}") for i in range(1000)]
            with ThreadPoolExecutor(max_workers=16) as pool:
                refused = list(pool.map(lambda i: get(i, flood[i]), range(1000)))
            assert refused == [401] * 1000
            return calls, issuer.jwks_requests - before
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing (make test installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        redis = subprocess.Popen(  # noqa: S603
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            print(f"revocation propagation over Redis on 127.0.0.1, {args.rounds} sign-outs\n")
            print("milliseconds from the revoke call's return to each other worker applying it")
            print("(0: applied before the call returned); in brackets, from the call's start\n")
            print(f"{'workers':<10}{'p50':>16}{'p99':>16}{'max':>16}{'before return':>16}")
            for workers in (2, 4):
                pairs = propagation(workers, args.rounds, f"redis://127.0.0.1:{port}/0")
                after = sorted(max(0.0, a) * 1000 for a, _ in pairs)
                start = sorted(s * 1000 for _, s in pairs)
                early = sum(a <= 0 for a, _ in pairs) / len(pairs)
                ranks = (
                    len(pairs) // 2,
                    min(len(pairs) - 1, int(len(pairs) * 0.99)),
                    len(pairs) - 1,
                )
                cells = [f"{after[i]:.2f} ({start[i]:.2f})" for i in ranks]
                print(f"{workers:<10}" + "".join(f"{c:>16}" for c in cells) + f"{early:>16.0%}")
            url = f"redis://127.0.0.1:{port}/0"
            without, with_store = hit_cost(url)
            print(f"\ncache hit, in-process: {without:.3f} µs without a store, {with_store:.3f} µs "
                  f"with one ({with_store / without:.3f}x)")  # fmt: skip
            loads = million_load(url)
            seconds = statistics.median(t for t, _ in loads)
            growth = statistics.median(m for _, m in loads)
            print(f"a new worker loading 1,000,000 revocations: {seconds:.2f} s (median of "
                  f"{len(loads)}; runs {', '.join(f'{t:.2f}' for t, _ in loads)}), "
                  f"RSS +{growth:.0f} MiB")  # fmt: skip
            calls, fetches = fan_out(url)
            print(f"one new opaque token on 4 workers at once: {calls} upstream call(s)")
            print(
                f"1,000 unknown-kid tokens over 4 workers: {fetches} JWKS fetch(es) (cooldown 30 s)"
            )
        finally:
            redis.terminate()
            redis.wait(10)


if __name__ == "__main__":
    main()
