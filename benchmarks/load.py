"""A small HTTP/1.1 load generator: keep-alive connections on 127.0.0.1, bounded in time.

Prints JSON: {"rps", "p50_ms", "p99_ms", "requests", "errors"}. Used by middleware.py --e2e.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


async def worker(
    port: int,
    request: bytes,
    until: float,
    latencies: list[float],
    errors: list[int],
    count: int | None = None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (count is None and time.perf_counter() < until) or (count is not None and count > 0):
            if count is not None:
                count -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


async def run(
    port: int,
    token: str,
    seconds: float,
    connections: int,
    warmup: float,
    requests: int | None = None,
) -> dict[str, float]:
    request = (
        f"GET /whoami HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nuser-agent: authgate-load\r\n"
        f"accept: application/json\r\nauthorization: Bearer {token}\r\n\r\n"
    ).encode()
    if warmup > 0:  # traffic that is not counted
        until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(port, request, until, [], []) for _ in range(connections)))
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    each = None if requests is None else requests // connections
    await asyncio.gather(
        *(worker(port, request, until, latencies, errors, each) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=None, help="send exactly this many")
    args = parser.parse_args()
    result = asyncio.run(
        run(args.port, args.token, args.seconds, args.connections, args.warmup, args.requests)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
