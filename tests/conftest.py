"""Shared fixtures: keys generated once per session, a fixed clock, token factories."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from authgate import JWTVerifier
from authgate.testing import SigningKey, TokenFactory

T = TypeVar("T")

NOW = 1_800_000_000.0
ALL_ALGS = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip


class Clock:
    """A clock the test moves by hand (``clock.now += 31``); starts at ``now`` or the real time."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def all_at_once(call: Callable[[], T], threads: int = 100) -> list[T]:
    """Run ``call`` in ``threads`` threads released together by a barrier; their results."""
    barrier = threading.Barrier(threads)

    def released(_: int) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(released, range(threads)))


def fixed_clock() -> float:
    """The tests' frozen 'now'."""
    return NOW


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    """One generated key per algorithm (the RS* share one RSA key), shared by the session."""
    keys = {alg: SigningKey(alg, kid=f"{alg.lower()}-1") for alg in ALL_ALGS if alg[:2] != "RS"}
    rsa = SigningKey("RS256", kid="rsa-1")
    for alg in ("RS256", "RS384", "RS512"):
        keys[alg] = SigningKey(alg, kid="rsa-1", private=rsa.private)
    return keys


@pytest.fixture(scope="session")
def rs256(signing_keys: dict[str, SigningKey]) -> SigningKey:
    """The session's RS256 key."""
    return signing_keys["RS256"]


@pytest.fixture
def tokens(rs256: SigningKey) -> TokenFactory:
    """Real-time RS256 tokens of https://issuer.test (for tests through real apps)."""
    return TokenFactory(key=rs256, issuer="https://issuer.test")


@pytest.fixture
def factory(rs256: SigningKey) -> TokenFactory:
    """An RS256 factory minting at the frozen 'now' for issuer https://issuer.test."""
    return TokenFactory(key=rs256, issuer="https://issuer.test", clock=fixed_clock)


@pytest.fixture
def make_verifier(factory: TokenFactory) -> Callable[..., JWTVerifier]:
    """Build a verifier for the factory's key with the frozen clock; kwargs override."""

    def make(**overrides: object) -> JWTVerifier:
        options: dict[str, object] = {
            "algorithms": ["RS256"],
            "issuer": "https://issuer.test",
            "clock": fixed_clock,
        }
        options.update(overrides)
        keys = options.pop("keys", factory.key.keyset())
        return JWTVerifier(keys, **options)  # type: ignore[arg-type]

    return make
