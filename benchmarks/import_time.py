"""Cold ``import authgate`` against cold ``import jwt`` (PyJWT): median of interleaved runs.

Each run is a new interpreter (bytecode already compiled by a first, discarded run); the
interpreter's own start-up (``python -c pass``) is measured the same way and subtracted.
Also reports whether httpx was imported (it must not be, until a remote source is built).

Run: ``python benchmarks/import_time.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STATEMENTS = {
    "python -c pass": "pass",
    "import authgate": "import authgate",
    "import jwt (PyJWT)": "import jwt",
}


def once(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)  # noqa: S603
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    for statement in STATEMENTS.values():
        once(statement)  # compile bytecode, warm the page cache
    samples: dict[str, list[float]] = {label: [] for label in STATEMENTS}
    for _ in range(args.runs):
        for label, statement in STATEMENTS.items():
            samples[label].append(once(statement))
    base = statistics.median(samples["python -c pass"])
    print(f"cold imports: median of {args.runs} interleaved runs, start-up subtracted\n")
    for label in list(STATEMENTS)[1:]:
        print(f"{label:<24}{(statistics.median(samples[label]) - base) * 1000:>8.1f} ms")
    probe = "import sys, authgate; print('httpx' in sys.modules, 'asyncio' in sys.modules)"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    print(f"\nafter import authgate: httpx imported: {out[0]}, asyncio imported: {out[1]}")


if __name__ == "__main__":
    main()
