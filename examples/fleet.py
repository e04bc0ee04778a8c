"""authgate fleet demo: two workers sharing revocations through Redis, over real HTTP.

Starts a redis-server and two uvicorn workers on free 127.0.0.1 ports, signs a token out on
worker A and shows worker B refusing it; then kills Redis and shows that no request notices
(valid tokens keep 200 on both), and that a sign-out made meanwhile reaches B once Redis is
back. Exits 0 when every answer is the expected one.

Run: ``make demo-fleet`` (installs redis-server when missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fleet_worker import ISSUER, SECRET  # noqa: E402

from authgate.testing import SigningKey, TokenFactory, free_port, wait_for_port  # noqa: E402


def start_redis(port: int, folder: str) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing: run `make demo-fleet`, which installs it")
    process = subprocess.Popen(  # noqa: S603
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process


def main() -> int:
    failures = 0

    def check(label: str, got: object, expected: object) -> None:
        nonlocal failures
        ok = got == expected
        failures += not ok
        print(
            f"  {'ok ' if ok else 'BAD'} {label}: {got}" + ("" if ok else f" (expected {expected})")
        )

    redis_port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        redis = start_redis(redis_port, folder)
        env = {**os.environ, "AUTHGATE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        ports = [free_port(), free_port()]
        workers = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "fleet_worker:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=HERE,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            for port in ports:
                wait_for_port(port)
            a, b = (httpx.Client(base_url=f"http://127.0.0.1:{port}") for port in ports)
            tokens = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)

            def status(client: httpx.Client, token: str) -> int:
                return client.get(
                    "/whoami", headers={"authorization": f"Bearer {token}"}
                ).status_code

            print(f"redis on {redis_port}, worker A on {ports[0]}, worker B on {ports[1]}\n")
            print("1. a sign-out on A is refused by B")
            ada = tokens.mint("ada", iat=int(time.time()) - 5)
            check("ada on A", status(a, ada), 200)
            check("ada on B", status(b, ada), 200)
            started = time.monotonic()
            check("sign-out on A reached the store", a.post("/signout", content=ada).json(),
                  {"reached_store": True})  # fmt: skip
            while status(b, ada) != 401 and time.monotonic() - started < 5:
                pass
            print(f"      B refused it {1000 * (time.monotonic() - started):.1f} ms later")
            check("ada on A", status(a, ada), 401)
            check("ada on B", status(b, ada), 401)

            print("\n2. Redis goes down: no request notices")
            bob, eve = (tokens.mint(name, iat=int(time.time()) - 5) for name in ("bob", "eve"))
            check("eve on B (cached before the outage)", status(b, eve), 200)
            redis.send_signal(signal.SIGKILL)
            redis.wait(10)
            codes = {status(client, bob) for client in (a, b) for _ in range(10)}
            check("bob on A and B, 20 requests", codes, {200})
            check("sign-out of eve on A (kept, Redis is down)",
                  a.post("/signout", content=eve).json(), {"reached_store": False})  # fmt: skip
            check("eve on A", status(a, eve), 401)
            check("eve on B (it cannot know yet)", status(b, eve), 200)

            print("\n3. Redis is back: the kept sign-out reaches B")
            redis = start_redis(redis_port, folder)
            started = time.monotonic()
            while status(b, eve) != 401 and time.monotonic() - started < 5:
                time.sleep(0.05)
            check("eve on B", status(b, eve), 401)
            print(f"      within {time.monotonic() - started:.1f} s of Redis returning")
            check("bob on A and B", {status(a, bob), status(b, bob)}, {200})
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(10)
            redis.terminate()
            redis.wait(10)
    print("\nall answers as expected" if not failures else f"\n{failures} unexpected answers")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
