"""Cache-hit cost in CPU instructions (valgrind callgrind): repeatable on a noisy machine.

Wall-clock medians on a shared 2-core machine wander by more than the microsecond we want to
see. Instruction counts do not: each contender runs N and 2N in-process ASGI requests under
callgrind, and the difference divided by N is its cost per request, start-up excluded.

Run: ``python benchmarks/instructions.py`` (needs valgrind; a few minutes), and with ``--e2e``
for a uvicorn server over real sockets (slower: the server runs under valgrind). End to end,
the count still moves with how the event loop happens to batch the four connections' requests
(about 0.2 % a run), so ``--e2e`` runs ``--rounds`` interleaved rounds (3 by default) and
reports each app's median and range.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = {
    "bare": "bare Starlette app",
    "noop": "  reference: empty pass-through",
    "minimal": "  reference: header + dict lookup, in Python",
    "authgate": "authgate, cache hit",
    "prometheus": "authgate, cache hit, Prometheus attached",
}


def run_requests(name: str, number: int) -> None:
    sys.path.insert(0, str(HERE))
    from authgate.testing import SigningKey, TokenFactory
    from bench_apps import ISSUER, build_apps
    from middleware import fresh_scope, receive, scope_for

    key = SigningKey("HS256", kid="bench", private=b"k" * 32)  # no randomised key generation
    token = TokenFactory(key=key, issuer=ISSUER, ttl=3600).mint("user-1", jti="fixed")
    app = build_apps(key.public_jwk(), token)[name]
    template = scope_for(token)

    async def send(message: dict[str, object]) -> None:
        return None

    async def drive() -> None:
        for _ in range(number):
            await app(fresh_scope(template), receive, send)

    asyncio.run(drive())


def instructions(name: str, number: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",  # noqa: S607
         sys.executable, __file__, name, str(number)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if found is None:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def served_instructions(name: str, requests: int, env: dict[str, str], token: str) -> int:
    """Instructions a uvicorn server executes, start to exit, serving ``requests`` requests."""
    import signal
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",  # noqa: S607
         sys.executable, "-m", "uvicorn", f"bench_apps:{name}", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--lifespan", "off"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("uvicorn under valgrind did not start") from None
            time.sleep(0.5)
    subprocess.run(  # noqa: S603
        [sys.executable, str(HERE / "load.py"), "--port", str(port), "--token", token,
         "--warmup", "0", "--connections", "4", "--requests", str(requests)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=300)
    found = re.search(r"Collected\s*:\s*(\d+)", err)
    if found is None:
        raise RuntimeError(err[-2000:])
    return int(found.group(1))


def end_to_end(rounds: int) -> None:
    """Instructions per request of a real uvicorn server over sockets (N=1500 minus N=500),
    the median of ``rounds`` interleaved rounds."""
    import json
    import statistics
    import tempfile

    sys.path.insert(0, str(HERE))
    from authgate.testing import SigningKey, TokenFactory
    from bench_apps import ISSUER

    key = SigningKey("HS256", kid="bench", private=b"k" * 32)
    token = TokenFactory(key=key, issuer=ISSUER, ttl=3600).mint("user-1", jti="fixed")
    with tempfile.TemporaryDirectory() as tmp:
        jwk_path = Path(tmp) / "jwk.json"
        jwk_path.write_text(json.dumps(key.public_jwk()))
        env = {**os.environ, "PYTHONHASHSEED": "0", "AUTHGATE_BENCH_JWK": str(jwk_path),
               "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}  # fmt: skip
        low, high = 500, 1500
        runs: dict[str, list[float]] = {"bare": [], "authgate": [], "starlette": []}
        for _ in range(rounds):
            for name, found in runs.items():
                found.append(
                    (served_instructions(name, high, env, token)
                     - served_instructions(name, low, env, token)) / (high - low)
                )  # fmt: skip
    ratios = {
        name: [value / bare for value, bare in zip(found, runs["bare"], strict=True)]
        for name, found in runs.items()
    }
    print(
        "\ninstructions per request served by uvicorn over real sockets (N=1500 minus N=500),"
        f" median of {rounds} rounds; vs bare: the median of each round's ratio, and its range\n"
    )
    print(f"{'app':<44}{'instructions':>13}{'vs bare':>9}{'range':>17}")
    print("-" * 83)
    labels = {"bare": "bare Starlette app", "authgate": "authgate, cache hit",
              "starlette": "AuthenticationMiddleware + PyJWT (HS256)"}  # fmt: skip
    for name, label in labels.items():
        value, ratio = statistics.median(runs[name]), ratios[name]
        spread = f"{min(ratio):.4f}-{max(ratio):.4f}"
        print(f"{label:<44}{value:>13,.0f}{statistics.median(ratio):>8.4f}x{spread:>17}")


def main() -> None:
    if len(sys.argv) == 3:
        run_requests(sys.argv[1], int(sys.argv[2]))
        return
    if sys.argv[1:2] == ["--e2e"]:
        rounds = int(sys.argv[3]) if sys.argv[2:3] == ["--rounds"] else 3
        end_to_end(rounds)
        return
    low, high = 500, 1500
    per_request = {
        name: (instructions(name, high) - instructions(name, low)) / (high - low)
        for name in CONTENDERS
    }
    bare = per_request["bare"]
    print("instructions per in-process ASGI request (callgrind; N=1500 minus N=500)\n")
    print(f"{'app':<44}{'instructions':>13}{'vs bare':>9}{'over bare':>11}")
    print("-" * 77)
    for name, label in CONTENDERS.items():
        value = per_request[name]
        print(f"{label:<44}{value:>13,.0f}{value / bare:>8.3f}x{value - bare:>11,.0f}")


if __name__ == "__main__":
    main()
