"""A server the suite starts as its own process (gunicorn, uvicorn, hypercorn, granian), from
the project's root, with what it needs in its environment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from authgate.testing import wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def answering(base: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until the server answers HTTP (any status): gunicorn's master listens before its
    workers have imported the app, which on a loaded machine takes seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(base + "/", timeout=5.0)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{base} does not answer") from None
            time.sleep(0.1)


@contextlib.contextmanager
def served(args: list[str], port: int, env: Mapping[str, str]) -> Iterator[str]:
    """Run ``python args…`` until the block ends; yield its base URL once ``port`` listens.

    Args:
        args: the interpreter's arguments (``-m gunicorn …``), binding ``port``.
        port: where the server listens on 127.0.0.1.
        env: variables added to this process's environment.
    """
    process = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, process=process, timeout=30)
        base = f"http://127.0.0.1:{port}"
        answering(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(10)
