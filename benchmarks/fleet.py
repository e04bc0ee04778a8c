"""The fleet: how fast a sign-out reaches every worker, over a real Redis on 127.0.0.1.

Starts a redis-server and N uvicorn workers (tests/fleet_app.py: Back Office tokens, a
RedisStore), signs a cached token out through one worker and measures, for each other worker,
the time from the sign-out call returning to that worker's first refusal (polling it as fast
as it answers). Repeated, for 2 and 4 workers; p50 and p99 reported.

Run: ``python benchmarks/fleet.py [--rounds N]`` (needs redis-server; ``make test`` installs it).
"""

from __future__ import annotations

import argparse
import shutil
import socket
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

from authgate.testing import SigningKey, TokenFactory  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def propagation(workers: int, rounds: int, redis_url: str) -> list[float]:
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
    samples: list[float] = []
    try:
        for port in ports:
            wait(port)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for port in ports]
        for i in range(rounds):
            token = factory.mint(f"user-{i}", iat=int(time.time()) - 5)
            headers = {"authorization": f"Bearer {token}"}
            for client in clients:  # cached everywhere
                assert client.get("/whoami", headers=headers).status_code == 200
            clients[0].post("/signout", content=token)
            returned = time.perf_counter()
            for client in clients[1:]:
                while client.get("/whoami", headers=headers).status_code != 401:
                    pass
                samples.append(time.perf_counter() - returned)
        for client in clients:
            client.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    return samples


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
            wait(port)
            print(f"revocation propagation over Redis on 127.0.0.1, {args.rounds} sign-outs\n")
            print(f"{'workers':<10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
            for workers in (2, 4):
                times = sorted(propagation(workers, args.rounds, f"redis://127.0.0.1:{port}/0"))
                p50 = statistics.median(times) * 1000
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
                print(f"{workers:<10}{p50:>10.2f}{p99:>10.2f}{times[-1] * 1000:>10.2f}")
        finally:
            redis.terminate()
            redis.wait(10)


if __name__ == "__main__":
    main()
