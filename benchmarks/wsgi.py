"""WSGI cache-hit cost: a minimal WSGI app bare, and behind authgate on a cached token.

The app only reads the principal and answers, so what is measured is the middleware (a Flask
request costs 100+ µs here, whose noise hides a microsecond). Contenders, interleaved in
rounds, median µs per request (the WSGI app called directly with a fresh environ, no server):
  bare         the app alone
  hit          authgate, the same token every request (the hit path: one environ lookup,
               one cache lookup)
  full-path    the same cached token spelled ``bearer`` (lower case): extraction and
               validation run, then the cache answers (what every hit cost before the hit path)

Run: ``python benchmarks/wsgi.py [--rounds N] [--number N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from authgate import Authenticator, JWTProvider, JWTVerifier
from authgate.testing import SigningKey, TokenFactory
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

ISSUER = "https://login.example.com"


def whoami(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    principal = environ.get(ENVIRON_KEY)
    start_response("200 OK", [("content-type", "application/json")])
    return [json.dumps({"user": principal.identity if principal else None}).encode()]


def environ_for(authorization: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/whoami",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "api.example.com",
        "HTTP_ACCEPT": "application/json",
        "HTTP_AUTHORIZATION": authorization,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def per_request_us(app: Callable[..., Iterable[bytes]], template: dict[str, Any], n: int) -> float:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    # a fresh environ with a new header string per request, as a server builds one
    environs = [{**template, "HTTP_AUTHORIZATION": "".join(template["HTTP_AUTHORIZATION"])}]
    environs = [dict(environs[0]) for _ in range(n)]
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for environ in environs:
            for _ in app(environ, start_response):
                pass
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    assert set(statuses) == {"200 OK"}, set(statuses)
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--number", type=int, default=2000, help="requests per round")
    args = parser.parse_args()

    key = SigningKey("RS256", kid="bench")
    factory = TokenFactory(key=key, issuer=ISSUER, ttl=3600)
    token = factory.mint("user-1", scope="orders:read")
    verifier = JWTVerifier(factory.keyset(), algorithms=["RS256"], issuer=ISSUER)
    auth = Authenticator([JWTProvider("bench", verifier)])
    plan = {
        "bare": (whoami, environ_for(f"Bearer {token}")),
        "hit": (AuthGateWSGIMiddleware(whoami, auth), environ_for(f"Bearer {token}")),
        "full-path": (
            AuthGateWSGIMiddleware(whoami, auth),
            environ_for(f"bearer {token}"),
        ),
    }
    for app, template in plan.values():  # warm up; the first request verifies and caches
        per_request_us(app, template, 20)
    samples: dict[str, list[float]] = {name: [] for name in plan}
    for _ in range(args.rounds):
        for name, (app, template) in plan.items():
            samples[name].append(per_request_us(app, template, args.number))
    r = {name: statistics.median(values) for name, values in samples.items()}
    print(f"WSGI app called directly: median of {args.rounds} rounds x {args.number}\n")
    print(f"{'app':<48}{'µs/request':>11}{'vs bare':>9}{'over bare':>11}")
    print("-" * 79)
    labels = {
        "bare": "bare WSGI app",
        "hit": "authgate, cache hit",
        "full-path": "authgate, cache hit through the full path",
    }
    for name, label in labels.items():
        print(
            f"{label:<48}{r[name]:>11.2f}{r[name] / r['bare']:>8.2f}x{r[name] - r['bare']:>11.2f}"
        )


if __name__ == "__main__":
    main()
