"""Revocation under load: the cost of one revoke as the denylist grows, and first-seen
verification latency while another thread revokes.

1. µs per revoke (median of 5 batches of 1,000) with 1k, 50k and 1M entries already on the
   denylist: pruning is amortised, so the cost must not grow with the list (target: 50k
   within 3x of 1k).
2. First-seen HS256 verification (a new token each call, through the Authenticator with a
   warm cache of 10,000 entries): p50 and p99 alone, then with a thread revoking 1,000 tokens a
   second (target: p99 within 2x).

Run: ``python benchmarks/revocation.py``.
"""

from __future__ import annotations

import statistics
import threading
import time

from authgate import Authenticator, JWTProvider, JWTVerifier
from authgate.testing import SigningKey, TokenFactory

ISSUER = "https://login.example.com"
KEY = SigningKey("HS256", kid="bench", private=b"r" * 32)


def authenticator() -> tuple[Authenticator, TokenFactory]:
    factory = TokenFactory(key=KEY, issuer=ISSUER, ttl=3600)
    verifier = JWTVerifier(KEY.keyset(), algorithms=["HS256"], issuer=ISSUER)
    return Authenticator([JWTProvider("bench", verifier)]), factory


def revoke_cost(entries: int) -> float:
    """Median µs per revoke(jti=...) with ``entries`` live entries on the denylist."""
    auth, _ = authenticator()
    expires = time.time() + 3600
    for i in range(entries):
        auth.revoke(jti=f"base-{i}", expires_at=expires)
    batches = []
    for batch in range(5):
        start = time.perf_counter()
        for i in range(1000):
            auth.revoke(jti=f"more-{batch}-{i}", expires_at=expires)
        batches.append((time.perf_counter() - start) / 1000 * 1e6)
    return statistics.median(batches)


REVOKED: list[float] = []  # revocations per second achieved by the revoking thread


def first_seen_latencies(revoking: bool, count: int = 20_000) -> list[float]:
    """µs per first-seen verification, optionally while a thread revokes 1,000 tokens/s."""
    auth, factory = authenticator()
    for _ in range(10_000):  # a warm, full-ish cache
        auth.authenticate({"authorization": f"Bearer {factory.mint('warm')}"})
    tokens = [factory.mint(f"user-{i}") for i in range(count)]
    leaving = [factory.mint(f"leaving-{i}") for i in range(count)]  # minted beforehand
    stop = threading.Event()

    def revoker() -> None:
        # paced by the clock: a thread sleeping 1 ms between revocations gets the GIL back
        # only every switch interval, so revoke whatever is due, then sleep.
        started, done = time.perf_counter(), 0
        while not stop.is_set() and done < len(leaving):
            due = int((time.perf_counter() - started) * 1000)
            while done < min(due, len(leaving)):
                auth.revoke(leaving[done])
                done += 1
            time.sleep(0.002)
        REVOKED.append(done / (time.perf_counter() - started))

    thread = threading.Thread(target=revoker, daemon=True)
    if revoking:
        thread.start()
    samples = []
    try:
        for token in tokens:
            start = time.perf_counter()
            auth.authenticate({"authorization": f"Bearer {token}"})
            samples.append((time.perf_counter() - start) * 1e6)
    finally:
        stop.set()
        if revoking:
            thread.join()
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    print("µs per revoke, median of 5 batches of 1,000, by entries already on the denylist\n")
    costs = {n: revoke_cost(n) for n in (1_000, 50_000, 1_000_000)}
    for n, cost in costs.items():
        print(f"{n:>10,} entries  {cost:8.2f} µs  ({cost / costs[1_000]:.2f}x the 1k cost)")
    print("\nfirst-seen HS256 verification, 20,000 new tokens, µs\n")
    print(f"{'':<32}{'p50':>8}{'p99':>9}")
    alone = first_seen_latencies(revoking=False)
    busy = first_seen_latencies(revoking=True)
    for label, samples in (("alone", alone), ("revoking 1,000/s in a thread", busy)):
        print(f"{label:<32}{percentile(samples, 0.5):>8.1f}{percentile(samples, 0.99):>9.1f}")
    ratio = percentile(busy, 0.99) / percentile(alone, 0.99)
    print(f"\np99 with revocations / without: {ratio:.2f}x ({REVOKED[0]:,.0f} revocations/s)")


if __name__ == "__main__":
    main()
