"""Soak: uvicorn serving a protected app to concurrent clients sending every kind of credential,
while the issuer rotates its key and, later, its JWKS goes down for 20 s.

Credentials, drawn at random: valid tokens (200 subjects, so the cache churns), the ECDSA
(r, n - s) twin of a valid token (valid too: same signing input), expired, forged (right kid,
another key), unknown kid, a valid and a wrong API key, opaque values and junk. Midway (1/3)
the issuer rotates its key; from 1/2 its JWKS answers 503 for 20 s.

Reported: requests by kind and answer; wrong accepts (must be 0); wrong rejects of tokens whose
key was cached (must be 0); 5xx other than the planned 503s (must be 0); the server's RSS at
start and end (bounded by the cache: 2,000 entries, 4 MiB); JWKS fetches.

Run: ``python benchmarks/soak.py [--seconds 60] [--clients 8]``.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from authgate.keys import _CURVES
from authgate.testing import LocalIssuer, SigningKey, TokenFactory

HERE = Path(__file__).resolve().parent
API_KEY = "ak_soak_" + secrets.token_hex(12)


def twin(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    s = _CURVES["P-256"][2] - int.from_bytes(raw[32:], "big")
    encoded = base64.urlsafe_b64encode(raw[:32] + s.to_bytes(32, "big")).rstrip(b"=").decode()
    return f"{head}.{payload}.{encoded}"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Plan:
    """What each credential kind must get, given the phase (rotated, outage)."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        self.lock = threading.Lock()
        self.valid = [issuer.mint(f"user-{i}", exp=int(time.time()) + 3600) for i in range(200)]
        self.rotated = False
        self.outage = False
        other = SigningKey("ES256", kid=issuer.factory.key.kid)
        self.forged = TokenFactory(key=other, issuer=issuer.url).mint("mallory")
        stranger = SigningKey("ES256", kid="unknown-kid")
        self.unknown = TokenFactory(key=stranger, issuer=issuer.url).mint("mallory")
        self.expired = issuer.mint("late", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
        self.new_valid: list[str] = []

    def rotate(self) -> None:
        with self.lock:
            self.issuer.rotate()
            self.new_valid = [
                self.issuer.mint(f"new-{i}", exp=int(time.time()) + 3600) for i in range(50)
            ]
            self.rotated = True

    def draw(self, rng: random.Random) -> tuple[str, dict[str, str | bytes], set[int]]:
        """(kind, headers, acceptable statuses)."""
        kinds = ["valid"] * 6 + ["twin", "expired", "forged", "unknown-kid"]
        kinds += ["api-key", "bad-key", "opaque", "junk"]
        kind = rng.choice(kinds + (["new-key"] * 2 if self.rotated else []))
        if kind == "valid":
            return kind, _bearer(rng.choice(self.valid)), {200}
        if kind == "twin":
            return kind, _bearer(twin(rng.choice(self.valid))), {200}
        if kind == "new-key":
            # its key is fetched at the first request after the unknown-kid cooldown (5 s):
            # before, key_not_found (401, by design); during the outage, a planned 503
            return kind, _bearer(rng.choice(self.new_valid)), {200, 401, 503}
        if kind == "expired":
            return kind, _bearer(self.expired), {401}
        if kind == "forged":
            return kind, _bearer(self.forged), {401}
        if kind == "unknown-kid":
            return kind, _bearer(self.unknown), {401, 503}
        if kind == "api-key":
            return kind, {"x-api-key": API_KEY}, {200}
        if kind == "bad-key":
            return kind, {"x-api-key": "ak_soak_" + secrets.token_hex(12)}, {401}
        if kind == "opaque":
            return kind, _bearer(secrets.token_urlsafe(24)), {401}
        junk = rng.choice(
            [
                "Bearer",
                "Bearer a b",
                "Basic Zm9vOmJhcg==",
                "Bearer a.b",
                "Bearer " + "x" * 20_000,
                "Bearer \u00e9t\u00e9",
            ]
        )
        return "junk", {"authorization": junk.encode("utf-8")}, {400, 401}  # raw bytes on the wire


def _bearer(token: str) -> dict[str, str | bytes]:
    return {"authorization": f"Bearer {token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with LocalIssuer("ES256") as issuer:
        port = free_port()
        env = {**os.environ, "AUTHGATE_SOAK_ISSUER": issuer.url, "AUTHGATE_SOAK_API_KEY": API_KEY,
               "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}  # fmt: skip
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "uvicorn", "soak_app:app", "--port", str(port),
             "--log-level", "error", "--no-access-log", "--lifespan", "off"],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/whoami"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    server.kill()
                    raise
                time.sleep(0.1)
        plan = Plan(issuer)
        rss_start = rss_kib(server.pid)
        results: Counter[tuple[str, int]] = Counter()
        wrong: Counter[str] = Counter()
        lock = threading.Lock()
        started = time.monotonic()
        end = started + args.seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(timeout=10) as http:
                while time.monotonic() < end:
                    kind, headers, ok = plan.draw(rng)
                    try:
                        status = http.get(base, headers=headers).status_code
                    except httpx.HTTPError:
                        status = 0  # counted as wrong: the server must always answer
                    with lock:
                        results[(kind, status)] += 1
                        if status not in ok:
                            wrong[f"{kind} -> {status}"] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds / 3)
        plan.rotate()
        time.sleep(max(0.0, started + args.seconds / 2 - time.monotonic()))
        issuer.fault, plan.outage = "down", True
        time.sleep(min(20.0, max(0.0, end - time.monotonic())))
        issuer.fault, plan.outage = None, False
        for thread in threads:
            thread.join()
        rss_end = rss_kib(server.pid)
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
        jwks_fetches = issuer.jwks_requests
    total = sum(results.values())
    print(f"soak: {args.seconds:.0f} s, {args.clients} clients, {total:,} requests "
          f"({total / args.seconds:,.0f}/s); rotation at {args.seconds / 3:.0f} s, "
          f"JWKS down from {args.seconds / 2:.0f} s for 20 s\n")  # fmt: skip
    kinds = sorted({kind for kind, _ in results})
    for kind in kinds:
        answers = ", ".join(
            f"{status}: {n:,}" for (k, status), n in sorted(results.items()) if k == kind
        )
        print(f"  {kind:<12} {answers}")
    wrong_accepts = sum(n for key, n in wrong.items() if key.endswith("-> 200"))
    wrong_rejects = sum(
        n for key, n in wrong.items() if key.startswith(("valid", "twin", "api-key"))
    )
    unplanned_5xx = sum(
        n
        for (kind, status), n in results.items()
        if status >= 500 and not (status == 503 and kind in ("new-key", "unknown-kid"))
    )
    print(f"\nwrong accepts: {wrong_accepts}; wrong rejects of tokens whose key was cached: "
          f"{wrong_rejects}; 5xx other than planned 503s: {unplanned_5xx}")  # fmt: skip
    print(f"server RSS: {rss_start / 1024:.1f} MiB at start, {rss_end / 1024:.1f} MiB at end; "
          f"JWKS fetches: {jwks_fetches}")  # fmt: skip
    if wrong:
        print("unexpected answers:", dict(wrong))
    sys.exit(1 if (wrong_accepts or wrong_rejects or unplanned_5xx) else 0)


if __name__ == "__main__":
    main()
