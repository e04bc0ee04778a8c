"""The fleet through the faults of real deployments, on Redis and on Valkey: a restart that
loses data, eviction policies, OOM, a log trimmed while a worker was away, Sentinel failover,
Cluster. Servers are real processes on free 127.0.0.1 ports (tests/redis_servers.py)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate import Authenticator, BackOfficeProvider, KeySet, RevokedToken
from authgate.redis import RedisStore
from authgate.testing import SigningKey, TokenFactory

from .fleet_app import ISSUER, SECRET
from .redis_servers import Redis
from .test_fleet import FreezableProxy, bearer, wait_until

FLEET_SECRET = "a fleet secret of at least thirty-two bytes"


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)


def mint(tokens: TokenFactory, subject: str) -> str:
    return tokens.mint(subject, iat=int(time.time()) - 5)


def worker(store: RedisStore, **options: Any) -> Authenticator:
    """One worker: Back Office tokens (revocable) against the fleet's store."""
    provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
    return Authenticator([provider], store=store, **options)


def refused(auth: Authenticator, token: str) -> bool:
    try:
        auth.authenticate(bearer(token))
    except RevokedToken:
        return True
    return False


@pytest.fixture
def workers() -> Iterator[list[Authenticator]]:
    """The workers a test starts, closed after it."""
    started: list[Authenticator] = []
    yield started
    for auth in started:
        auth.close()


def test_a_restart_without_persistence_is_repaired_by_the_running_workers(
    redis: Redis, tokens: TokenFactory, workers: list[Authenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Redis restarts empty (no AOF, no RDB): the running workers notice the new server run,
    write back the revocations they hold, and a worker started afterwards refuses them."""
    a = worker(RedisStore(redis.url, retry=0.1))
    b = worker(RedisStore(redis.url, retry=0.1))
    workers += [a, b]
    revoked = [mint(tokens, f"user-{i}") for i in range(50)]
    assert a.authenticate(bearer(revoked[0])) is not None
    assert b.authenticate(bearer(revoked[0])) is not None
    for token in revoked:
        assert a.revoke(token) is True
    wait_until(lambda: refused(b, revoked[-1]), within=5)
    redis.stop(signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="authgate.store"):
        redis.start()  # same port, nothing on disk
        assert a.store is not None
        wait_until(lambda: "written back from this worker" in caplog.text, within=10)
    late = worker(RedisStore(redis.url))
    workers.append(late)
    assert all(refused(late, token) for token in revoked)
    assert late.authenticate(bearer(mint(tokens, "someone-else"))) is not None


def test_revocations_outlive_volatile_eviction(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """Under ``volatile-lru`` with memory full of keys that carry a TTL, Redis evicts those:
    never the revocations (no TTL), so a worker started after the pressure refuses them."""
    import redis as redis_py

    server = Redis(tmp_path, flavour=flavour,
                   options=["--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru"])  # fmt: skip
    server.start()
    try:
        a = worker(RedisStore(server.url))
        workers.append(a)
        revoked = [mint(tokens, f"user-{i}") for i in range(200)]
        for token in revoked:
            assert a.revoke(token) is True
        filler = redis_py.Redis.from_url(server.url)
        for i in range(400):
            filler.set(f"cache:{i}", b"x" * 50_000, ex=3600)  # 20 MB through a 4 MB cap
        assert filler.info("stats")["evicted_keys"] > 0
        filler.close()
        late = worker(RedisStore(server.url))
        workers.append(late)
        assert sum(refused(late, token) for token in revoked) == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("options", "level", "said"),
    [
        (["--maxmemory-policy", "allkeys-lru"], logging.ERROR, "evicts any key"),
        ([], logging.WARNING, "persists nothing"),
    ],
    ids=["allkeys-policy", "no-persistence"],
)
def test_policies_that_can_lose_revocations_are_reported_at_start(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator],
    caplog: pytest.LogCaptureFixture, options: list[str], level: int, said: str,
) -> None:  # fmt: skip
    """At start the store reads the eviction policy and persistence: an ``allkeys-*`` policy
    is an ERROR, no persistence a WARNING; with AOF and ``noeviction`` nothing is said."""
    server = Redis(tmp_path, flavour=flavour, options=options).start()
    safe = Redis(tmp_path, flavour=flavour, appendonly=True).start()
    try:
        with caplog.at_level(logging.INFO, logger="authgate.store"):
            a = worker(RedisStore(server.url))
            workers.append(a)
            assert a.authenticate(bearer(mint(tokens, "ada"))) is not None
        assert [r.levelno for r in caplog.records if said in r.getMessage()] == [level]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="authgate.store"):
            b = worker(RedisStore(safe.url))
            workers.append(b)
            assert b.authenticate(bearer(mint(tokens, "ada"))) is not None
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        server.stop()
        safe.stop()


def test_a_signout_refused_by_oom_is_stored_once_memory_frees(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """Redis at ``maxmemory`` under ``noeviction`` answers OOM to writes: revoke() says the
    fleet does not have it, nobody turns to 503, and once memory frees the background retry
    stores it and the other worker refuses the token."""
    import redis as redis_py

    server = Redis(tmp_path, flavour=flavour,
                   options=["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])  # fmt: skip
    server.start()
    admin = redis_py.Redis.from_url(server.url)
    try:
        a = worker(RedisStore(server.url, retry=0.2, on_unavailable="refuse"))
        b = worker(RedisStore(server.url, retry=0.2, on_unavailable="refuse"))
        workers += [a, b]
        token = mint(tokens, "ada")
        assert a.authenticate(bearer(token)) is not None
        assert b.authenticate(bearer(token)) is not None
        with pytest.raises(redis_py.exceptions.ResponseError, match="maxmemory"):  # noqa: PT012
            for i in range(1000):
                admin.set(f"ballast:{i}", b"x" * 50_000)
        assert a.revoke(token) is False
        assert b.authenticate(bearer(mint(tokens, "bo"))) is not None  # serving, no 503
        admin.config_set("maxmemory", "0")
        wait_until(lambda: refused(b, token), within=10)
    finally:
        admin.close()
        server.stop()


def test_a_worker_whose_missed_entries_were_trimmed_reloads(
    redis: Redis, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """A worker cut off while the log is trimmed past its position cannot resume from the
    log: it reloads the whole denylist and refuses what was revoked meanwhile. One that
    missed entries still in the log resumes from them."""
    import redis as redis_py

    proxy = FreezableProxy(redis.port)
    try:
        a = worker(RedisStore(redis.url))
        b = worker(RedisStore(proxy.url, timeout=0.2, retry=0.1))
        workers += [a, b]
        first, second = mint(tokens, "ada"), mint(tokens, "bob")
        assert b.authenticate(bearer(first)) is not None
        assert b.store is not None
        proxy.frozen.set()
        wait_until(lambda: not b.store.subscribed, within=5)  # type: ignore[union-attr]
        assert a.revoke(first) is True
        proxy.frozen.clear()
        wait_until(lambda: refused(b, first), within=10)  # resumed from the log
        proxy.frozen.set()
        wait_until(lambda: not b.store.subscribed, within=5)  # type: ignore[union-attr]
        assert a.revoke(second) is True
        admin = redis_py.Redis.from_url(redis.url)
        admin.xtrim(a.store.log_key, maxlen=0)  # type: ignore[union-attr]
        admin.close()
        proxy.frozen.clear()
        wait_until(lambda: refused(b, second), within=10)  # reloaded: the log had lost it
    finally:
        proxy.close()
