"""What a new entry costs once a bounded cache is full, against the same cache filling up.

- the verified-token cache (``TokenCache``) at 100,000 entries: a first-seen token's put;
- the DPoP replay memory (``Expiring``, 100,000 proof ids by default): a new proof's claim.

A dict evicting its oldest key with ``next(iter(d))`` rescans every slot earlier evictions
emptied, so that cost grew with every eviction (to 60-110 µs a put) until the dict resized;
the figure of merit is ``full / filling``, which should stay near 1.

Run: ``python benchmarks/eviction.py [--size N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from authgate._cache import Expiring, TokenCache
from authgate.principal import principal_from_claims


def per_op_us(op: Callable[[bytes], object], keys: list[bytes]) -> float:
    start = time.perf_counter()
    for key in keys:
        op(key)
    return (time.perf_counter() - start) / len(keys) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    size = parser.parse_args().size
    principal = principal_from_claims({"sub": "alice", "jti": "j"}, provider="bench")
    cache = TokenCache(max_entries=size, max_bytes=1 << 40, max_ttl=3600, clock=time.time)
    replay: Expiring[bytes, bool] = Expiring(size, time.time)
    deadline = time.time() + 3000

    def put(key: bytes) -> None:
        cache.put(b"Bearer " + key, principal, deadline)

    def claim(key: bytes) -> None:
        replay.add(key, True, deadline)

    print(f"µs per new entry, a cache of {size:,} (Python {sys.version.split()[0]})")
    for name, op in (("TokenCache.put", put), ("Expiring.add (DPoP replay)", claim)):
        keys = [os.urandom(32).hex().encode() for _ in range(4 * size)]
        filling = per_op_us(op, keys[:size])
        full = [per_op_us(op, keys[size * i : size * (i + 1)]) for i in range(1, 4)]
        worst = max(full)
        print(f"  {name:<28} filling {filling:6.2f}; full {worst:6.2f} (x{worst / filling:.2f})")


if __name__ == "__main__":
    main()
