"""Cache-hit cost in CPU instructions (valgrind callgrind): repeatable on a noisy machine.

Wall-clock medians on a shared 2-core machine wander by more than the microsecond we want to
see. Instruction counts do not: each contender runs N and 2N in-process ASGI requests under
callgrind, and the difference divided by N is its cost per request, start-up excluded.

Run: ``python benchmarks/instructions.py`` (needs valgrind; a few minutes), and with ``--e2e``
for a uvicorn server over real sockets (slower: the server runs under valgrind), with
``--server standard`` for uvloop and httptools (what ``uvicorn[standard]`` installs) or ``h11``,
``--alg`` and ``--token-bytes 300,2000`` for tokens of those sizes, ``--references`` for the
empty pass-through and the least a Python middleware can do beside them. End to end, the count still
moves with how the event loop happens to batch the four connections' requests (about 0.2 % a
run), so ``--e2e`` runs ``--rounds`` interleaved rounds (3 by default) and reports each app's
median and range.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ISSUER = "https://login.example.com"  # bench_apps.ISSUER
CONTENDERS = {
    "bare": "bare Starlette app",
    "noop": "  reference: empty pass-through",
    "minimal": "  reference: header + dict lookup, in Python",
    "authgate": "authgate, cache hit",
    "prometheus": "authgate, cache hit, Prometheus attached",
}


def run_requests(name: str, number: int, size: int = 0) -> None:
    sys.path.insert(0, str(HERE))
    from bench_apps import build_apps
    from middleware import fresh_scope, receive, scope_for

    token, jwk = sized_token("HS256", size)  # HS256: no randomised key generation
    if name.startswith("wsgi-"):
        run_wsgi(name, number, token, jwk)
        return
    app = build_apps(jwk, token)[name]
    template = scope_for(token)

    async def send(message: dict[str, object]) -> None:
        return None

    async def drive() -> None:
        for _ in range(number):
            await app(fresh_scope(template), receive, send)

    asyncio.run(drive())


def run_wsgi(name: str, number: int, token: str, jwk: dict[str, object]) -> None:
    """``number`` WSGI requests, each with a new environ and a new header string (as a
    server decodes one per request), through the bare app or the authgate hit path."""
    from authgate import Authenticator, JWTProvider, JWTVerifier, KeySet
    from authgate.wsgi import AuthGateWSGIMiddleware
    from wsgi import environ_for, whoami

    verifier = JWTVerifier(KeySet.from_jwk(jwk), algorithms=["HS256"], issuer=ISSUER)
    auth = Authenticator([JWTProvider("bench", verifier)])
    app: Any = whoami if name == "wsgi-bare" else AuthGateWSGIMiddleware(whoami, auth)
    header = "Bearer " + token
    auth.authenticate({"authorization": header})  # cached before counting

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        return None

    for _ in range(number):
        environ = environ_for(header.encode().decode("latin-1"))
        for _chunk in app(environ, start_response):
            pass


def instructions(name: str, number: int, size: int = 0) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",  # noqa: S607
         sys.executable, __file__, "--drive", name, str(number), str(size)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if found is None:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def served_instructions(
    name: str, requests: int, env: dict[str, str], token: str, server: tuple[str, str]
) -> int:
    """Instructions a uvicorn server executes, start to exit, serving ``requests`` requests."""
    import signal
    import socket
    import time

    loop, http = server
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",  # noqa: S607
         sys.executable, "-m", "uvicorn", f"bench_apps:{name}", "--port", str(port),
         "--loop", loop, "--http", http,
         "--log-level", "warning", "--no-access-log", "--lifespan", "off"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("uvicorn under valgrind did not start") from None
            time.sleep(0.5)
    subprocess.run(  # noqa: S603
        [sys.executable, str(HERE / "load.py"), "--port", str(port), "--token", token,
         "--warmup", "0", "--connections", "4", "--requests", str(requests)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    found = re.search(r"Collected\s*:\s*(\d+)", err)
    if found is None:
        raise RuntimeError(err[-2000:])
    return int(found.group(1))


def sized_token(alg: str, size: int) -> tuple[str, dict[str, object]]:
    """A token of ``alg`` about ``size`` bytes long (a ``pad`` claim fills it), and its JWK."""
    sys.path.insert(0, str(HERE))
    from authgate.testing import SigningKey, TokenFactory

    key = SigningKey(alg, kid="bench", private=b"k" * 32 if alg == "HS256" else None)
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    pad = 0
    token = factory.mint("user-1", jti="fixed")
    while len(token) < size:
        pad += max(1, (size - len(token)) * 3 // 4)
        token = factory.mint("user-1", jti="fixed", pad="x" * pad)
    return token, key.public_jwk()


SERVERS = {"standard": ("uvloop", "httptools"), "h11": ("asyncio", "h11")}


def end_to_end(rounds: int, server: str, alg: str, sizes: list[int], references: bool) -> None:
    """Instructions per request of a real uvicorn server over sockets (N=1500 minus N=500),
    the median of ``rounds`` interleaved rounds, for each token size; what a hit adds over
    the bare app for each size (same request headers). With ``references``, also the empty
    pass-through and the least a Python middleware can do (header loop, dict lookup)."""
    import json
    import statistics
    import tempfile

    low, high = 500, 1500
    names = ("bare", "authgate", "starlette") + (("noop", "minimal") if references else ())
    runs: dict[tuple[int, str], list[float]] = {(n, a): [] for n in sizes for a in names}
    tokens = {size: sized_token(alg, size) for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for size, (token, jwk) in tokens.items():
                jwk_path = Path(tmp) / f"jwk-{size}.json"
                jwk_path.write_text(json.dumps(jwk))
                path = str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")
                env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path,
                       "AUTHGATE_BENCH_JWK": str(jwk_path),
                       "AUTHGATE_BENCH_TOKEN": token}  # fmt: skip
                for name in names:
                    per = SERVERS[server]
                    runs[size, name].append(
                        (served_instructions(name, high, env, token, per)
                         - served_instructions(name, low, env, token, per)) / (high - low)
                    )  # fmt: skip
    loop, http = SERVERS[server]
    print(
        f"\ninstructions per request served by uvicorn ({loop}, {http}) over real sockets"
        f" (N=1500 minus N=500), {alg} tokens, median of {rounds} rounds; vs bare: the median"
        " of each round's ratio, and its range; over bare: what a hit adds\n"
    )
    print(
        f"{'token':>6}  {'app':<42}{'instructions':>13}{'vs bare':>9}{'range':>17}{'over bare':>11}"
    )
    print("-" * 100)
    labels = {"bare": "bare Starlette app", "authgate": "authgate, cache hit",
              "starlette": f"AuthenticationMiddleware + PyJWT ({alg})",
              "noop": "  reference: empty pass-through",
              "minimal": "  reference: header loop + dict lookup"}  # fmt: skip
    labels = {name: label for name, label in labels.items() if name in names}
    for size in sizes:
        bare = runs[size, "bare"]
        for name, label in labels.items():
            found = runs[size, name]
            ratio = [value / base for value, base in zip(found, bare, strict=True)]
            over = statistics.median(v - b for v, b in zip(found, bare, strict=True))
            spread = f"{min(ratio):.4f}-{max(ratio):.4f}"
            print(
                f"{len(tokens[size][0]):>6}  {label:<42}{statistics.median(found):>13,.0f}"
                f"{statistics.median(ratio):>8.4f}x{spread:>17}{over:>11,.0f}"
            )


def by_size(sizes: list[int]) -> None:
    """In-process instructions a hit adds over the bare app (same request headers), ASGI and
    WSGI, for tokens of each size: the hit path's cost should not grow with the token."""
    low, high = 500, 1500
    pairs = {"ASGI": ("bare", "authgate"), "WSGI": ("wsgi-bare", "wsgi-authgate")}
    print("instructions a cache hit adds over the bare app, in-process (N=1500 minus N=500)\n")
    print(f"{'':<6}{'token':>7}{'bare':>11}{'authgate':>11}{'over bare':>11}{'vs bare':>9}")
    for label, (bare_name, hit_name) in pairs.items():
        for size in sizes:
            token = sized_token("HS256", size)[0]
            bare, hit = (
                (instructions(name, high, size) - instructions(name, low, size)) / (high - low)
                for name in (bare_name, hit_name)
            )
            print(
                f"{label:<6}{len(token):>7}{bare:>11,.0f}{hit:>11,.0f}{hit - bare:>11,.0f}"
                f"{hit / bare:>8.3f}x"
            )


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        run_requests(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e2e", action="store_true", help="uvicorn over real sockets")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=sorted(SERVERS), default="h11")
    parser.add_argument("--alg", default="HS256")
    parser.add_argument("--token-bytes", default="0", help="comma-separated token sizes")
    parser.add_argument(
        "--references", action="store_true", help="end to end: the pass-through and minimal too"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.token_bytes.split(",")]
    if args.e2e:
        end_to_end(args.rounds, args.server, args.alg, sizes, args.references)
        return
    if sizes != [0]:
        by_size(sizes)
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
