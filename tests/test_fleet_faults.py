"""The fleet through the faults of real deployments, on Redis and on Valkey: a restart that
loses data, eviction policies, OOM, a log trimmed while a worker was away, Sentinel failover,
Cluster. Servers are real processes on free 127.0.0.1 ports (authgate.testing.redis_servers)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate import Authenticator, BackOfficeProvider, KeySet
from authgate.redis import RedisStore
from authgate.testing import SigningKey, TokenFactory
from authgate.testing.redis_servers import ClusterServers as Cluster
from authgate.testing.redis_servers import RedisServer as Redis
from authgate.testing.redis_servers import SentinelServers as SentinelDeployment

from .fleet_app import ISSUER, SECRET
from .test_fleet import FreezableProxy, bearer, refused, wait_until

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

    server = Redis(tmp_path, flavour=flavour, options=["--maxmemory-policy", "noeviction"])
    server.start()
    admin = redis_py.Redis.from_url(server.url)
    try:
        a = worker(RedisStore(server.url, retry=0.2, on_unavailable="refuse"))
        b = worker(RedisStore(server.url, retry=0.2, on_unavailable="refuse"))
        workers += [a, b]
        token = mint(tokens, "ada")
        assert a.authenticate(bearer(token)) is not None
        assert b.authenticate(bearer(token)) is not None
        for i in range(60):  # 3 MB held, then a limit far below it: every write is refused,
            admin.set(f"ballast:{i}", b"x" * 50_000)  # however the server's own use moves
        admin.config_set("maxmemory", "1mb")
        with pytest.raises(redis_py.exceptions.ResponseError, match="maxmemory"):
            admin.set("probe", b"x")
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


# -- bring your own client: Sentinel, Cluster, the valkey package, asyncio twins ---------------


def test_sentinel_failover_loses_no_revocation(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """Workers on a Sentinel ``master_for`` client; the master is killed and a replica
    promoted. Revocations made before and during the failover all reach every worker and a
    worker started afterwards; in ``serve`` mode no request fails meanwhile."""
    from redis.sentinel import Sentinel

    deployment = SentinelDeployment(tmp_path, flavour).start()
    sentinels = []

    def store() -> RedisStore:
        # redis-py types Sentinel from 8.2 on: older releases need the ignore, newer do not
        sentinel = Sentinel(deployment.addresses, socket_timeout=0.5)  # type: ignore[no-untyped-call,unused-ignore]
        sentinels.append(sentinel)
        client = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]
            deployment.NAME, socket_timeout=0.5, decode_responses=True
        )
        return RedisStore(client=client, retry=0.2)

    try:
        a, b = worker(store()), worker(store())
        workers += [a, b]
        before = [mint(tokens, f"before-{i}") for i in range(20)]
        during = [mint(tokens, f"during-{i}") for i in range(20)]
        assert b.authenticate(bearer(before[0])) is not None
        for token in before:
            assert a.revoke(token) is True
        wait_until(lambda: refused(b, before[-1]), within=5)
        deployment.master.stop(signal.SIGKILL)
        for token in during:
            a.revoke(token)  # True or False: kept and retried until the new master has it
            assert b.authenticate(bearer(mint(tokens, "still-served"))) is not None
            time.sleep(0.1)
        wait_until(lambda: all(refused(b, token) for token in before + during), within=30)
        late = worker(store())
        workers.append(late)
        assert all(refused(late, token) for token in before + during)
    finally:
        for auth in workers:
            auth.close()
        workers.clear()
        for sentinel in sentinels:
            for connection in sentinel.sentinels:
                connection.close()
        deployment.stop()


def test_cluster_client_shares_revocations_results_and_claims(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """On a 3-master Cluster through ``RedisCluster``: revocations reach the other worker and
    a new one; shared records and claims work across slots. A plain URL to a cluster node is
    refused loudly (an ERROR naming the fix), never half-working."""
    from redis.cluster import RedisCluster

    cluster = Cluster(tmp_path, flavour).start()
    clients: list[Any] = []

    def store(**options: Any) -> RedisStore:
        client = RedisCluster(host="127.0.0.1", port=cluster.port, decode_responses=True)
        clients.append(client)
        return RedisStore(client=client, secret=FLEET_SECRET, **options)

    try:
        a, b = worker(store()), worker(store())
        workers += [a, b]
        token = mint(tokens, "ada")
        assert b.authenticate(bearer(token)) is not None
        assert a.revoke(token) is True
        wait_until(lambda: refused(b, token), within=5)
        late = worker(store())
        workers.append(late)
        assert refused(late, token)
        shared = a.store
        assert isinstance(shared, RedisStore)
        for name in ("results:x", "keys:y", "z"):  # three different slots
            assert shared.set_json(name, {"n": name}, 30) is True
            assert b.store.get_json(name) == {"n": name}  # type: ignore[union-attr]
        assert shared.claim("proof-1", 30) is True
        assert b.store.claim("proof-1", 30) is False  # type: ignore[union-attr]
        with caplog.at_level(logging.ERROR, logger="authgate.store"):
            plain = worker(RedisStore(f"redis://127.0.0.1:{cluster.port}/0", retry=0.2),
                           )  # fmt: skip
            workers.append(plain)
            plain.authenticate(bearer(mint(tokens, "bob")))
        assert "is a Redis Cluster" in caplog.text
        assert plain.store is not None
        assert not plain.store.subscribed
    finally:
        for auth in workers:
            auth.close()
        workers.clear()
        for client in clients:
            client.close()
        cluster.stop()


def test_the_valkey_client_and_asyncio_twins(
    redis: Redis, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """The ``valkey`` package's client works as redis-py's does; an asyncio twin serves
    ``revoke_async``; without one the async path runs the sync client in a thread. A given
    client is never closed by authgate."""
    import asyncio

    import redis as redis_py
    import redis.asyncio as redis_asyncio
    import valkey

    valkey_client = valkey.Valkey.from_url(redis.url)  # bytes replies: decoded by authgate
    sync = redis_py.Redis.from_url(redis.url, decode_responses=True)
    twin = redis_asyncio.Redis.from_url(redis.url, decode_responses=True)
    a = worker(RedisStore(client=valkey_client))
    b = worker(RedisStore(client=sync, async_client=twin))
    c = worker(RedisStore(client=redis_py.Redis.from_url(redis.url), secret=FLEET_SECRET))
    workers += [a, b, c]
    first, second, third = (mint(tokens, name) for name in ("ada", "bob", "cy"))
    for auth in (a, b, c):
        assert auth.authenticate(bearer(first)) is not None

    async def revoke() -> tuple[bool, bool, Any]:
        assert c.store is not None
        shared = await c.store.set_json_async("k", [1], 30)
        answers = await b.revoke_async(second), await c.revoke_async(third), shared
        await twin.aclose()  # the caller's: closed on the loop it ran on
        return answers

    assert asyncio.run(revoke()) == (True, True, True)
    assert a.revoke(first) is True
    for auth in (a, b, c):
        wait_until(lambda auth=auth: all(refused(auth, t) for t in (first, second, third)),  # type: ignore[misc]
                   within=5)  # fmt: skip
    for auth in workers:
        auth.close()
    workers.clear()
    assert valkey_client.ping() is True  # still open: it belongs to the caller
    assert sync.ping() is True
    valkey_client.close()  # type: ignore[no-untyped-call]
    sync.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "redis://x", "client": object()}, "a URL or a client"),
        ({"client": object()}, "redis-py or valkey client"),
        ({"async_client": object()}, "goes with client="),
        ({"prefix": "{team}"}, "without braces"),
        ({"prefix": ""}, "without braces"),
    ],
)
def test_store_clients_are_checked_at_construction(options: dict[str, Any], message: str) -> None:
    from authgate import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        RedisStore(**options)


def test_an_asyncio_client_in_the_sync_seat_is_refused() -> None:
    import redis.asyncio as redis_asyncio

    from authgate import ConfigurationError

    client = redis_asyncio.Redis()
    sync = __import__("redis").Redis()
    with pytest.raises(ConfigurationError, match="asyncio twin as async_client"):
        RedisStore(client=client)
    with pytest.raises(ConfigurationError, match="takes an asyncio client"):
        RedisStore(client=sync, async_client=sync)
    sync.close()


def test_first_requests_wait_for_a_redis_still_coming_up(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator]
) -> None:
    """A worker whose Redis is not up yet (a failover, a restart): its first requests, all
    of them, wait until the denylist loads (within ``startup_timeout``) and refuse what it
    holds; none is served on an empty denylist."""
    import threading

    server = Redis(tmp_path, flavour=flavour, appendonly=True)
    token = mint(tokens, "ada")
    server.start()
    seeding = worker(RedisStore(server.url))
    assert seeding.revoke(token) is True
    seeding.close()
    server.stop()  # AOF on: the revocation comes back with the server
    late = worker(RedisStore(server.url, retry=0.1, startup_timeout=20))
    workers.append(late)
    answers: list[bool] = []

    def first_request() -> None:
        answers.append(refused(late, token))

    threads = [threading.Thread(target=first_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert answers == []  # all four are waiting
    server.start()
    for thread in threads:
        thread.join(30)
    server.stop()
    assert answers == [True] * 4


# What the README lists as the least an ACL user needs: the test runs with exactly this.
MINIMAL_ACL = (
    "~{authgate}:* ~authgate:* +eval +zadd +zremrangebyscore +xadd +zscan +xread +xrange "
    "+xrevrange +exists +info +get +set +ping"
)


def test_tls_with_a_private_ca_and_the_minimal_acl_user(
    tmp_path: Path, flavour: str, tokens: TokenFactory, workers: list[Authenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Redis over TLS (``rediss://`` with a private CA; Valkey's wheel has no TLS, so plain
    there) with the default user off and an ACL user holding only the README's list: the
    fleet works (revocations, a new worker's load, shared records), and the start-up check
    says at INFO that it could not read the eviction policy."""
    from authgate.testing.pki import PrivateCA

    pki = PrivateCA(tmp_path / "pki")
    password = "a-long-acl-password-0123456789"
    config = tmp_path / "acl.conf"
    config.write_text(f"user default off\nuser authgate on >{password} {MINIMAL_ACL}\n")
    options = ["--include", str(config)]
    tls = flavour == "redis"
    if tls:
        from authgate.testing import free_port

        tls_port = free_port()
        options += ["--tls-port", str(tls_port), "--tls-cert-file", str(pki.server_cert),
                    "--tls-key-file", str(pki.server_key), "--tls-ca-cert-file",
                    str(pki.ca_cert), "--tls-auth-clients", "no"]  # fmt: skip
    server = Redis(tmp_path, flavour=flavour, options=options).start()
    if tls:
        url = f"rediss://authgate:{password}@127.0.0.1:{tls_port}/0?ssl_ca_certs={pki.ca_cert}"
    else:
        url = f"redis://authgate:{password}@127.0.0.1:{server.port}/0"
    try:
        with caplog.at_level(logging.INFO, logger="authgate.store"):
            a = worker(RedisStore(url, timeout=1.0, secret=FLEET_SECRET))
            b = worker(RedisStore(url, timeout=1.0, secret=FLEET_SECRET))
            workers += [a, b]
            token = mint(tokens, "ada")
            assert b.authenticate(bearer(token)) is not None
            assert a.revoke(token) is True
            wait_until(lambda: refused(b, token), within=5)
        assert "could not read the eviction policy" in caplog.text
        assert password not in caplog.text
        assert a.store is not None
        assert b.store is not None
        assert a.store.subscribed
        assert a.store.set_json("results:x", {"ok": 1}, 30) is True
        assert b.store.get_json("results:x") == {"ok": 1}
        assert a.store.claim("proof", 30) is True
        late = worker(RedisStore(url, timeout=1.0))
        workers.append(late)
        assert refused(late, token)
    finally:
        for auth in workers:
            auth.close()
        workers.clear()
        server.stop()


def test_the_deployment_examples_run(flavour: str) -> None:
    """examples/stores.py, the README's runnable example for each deployment (URL, TLS + ACL,
    Sentinel through a failover, Cluster), runs as written against local servers."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "stores.py"), flavour],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    expected = ["URL", "Sentinel (master_for)", "Sentinel, after the failover", "Cluster"]
    expected += ["TLS + ACL user"] if flavour == "redis" else []
    for name in expected:
        assert any(line.startswith(name) and "refused by b and by a new worker" in line
                   for line in done.stdout.splitlines()), name  # fmt: skip
