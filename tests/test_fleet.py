"""The fleet, for real: a redis-server on a free 127.0.0.1 port and several uvicorn worker
processes sharing it (tests/fleet_app.py). Redis comes from Debian's redis-server package,
which `make test` installs when missing; without it these tests fail, never skip."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate import (
    Authenticator,
    BackOfficeProvider,
    ClientAuth,
    ConfigurationError,
    InvalidToken,
    KeySet,
    KeySourceUnavailable,
    RevokedToken,
)
from authgate.redis import RedisStore
from authgate.testing import SigningKey, TokenFactory, free_port, wait_for_port
from authgate.testing.redis_servers import RedisServer as Redis

from .fleet_app import ISSUER, SECRET

ROOT = Path(__file__).resolve().parents[1]

FLEET_SECRET = "a fleet secret of at least thirty-two bytes"


class Worker:
    """One uvicorn process serving tests/fleet_app.py (or ``app``)."""

    def __init__(self, redis_url: str, app: str = "tests.fleet_app:app", **env: str) -> None:
        self.port = free_port()
        environment = {**os.environ, "AUTHGATE_REDIS_URL": redis_url, **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--port", str(self.port),
             "--log-level", "warning"],
            cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, process=self.process)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER)


def mint(tokens: TokenFactory, subject: str) -> str:
    return tokens.mint(subject, iat=int(time.time()) - 5)


def status(worker: Worker, token: str) -> tuple[int, str]:
    # a generous timeout: on a loaded machine (CI, coverage, workers on two cores) a request
    # waiting on the store and the upstream may take seconds; these tests count, not time
    answer = httpx.get(
        worker.base + "/whoami", headers={"authorization": f"Bearer {token}"}, timeout=30.0
    )
    return answer.status_code, answer.json().get("message", "")


def test_a_signout_on_one_worker_is_refused_by_all(redis: Redis, tokens: TokenFactory) -> None:
    workers = [Worker(redis.url), Worker(redis.url)]
    try:
        token = mint(tokens, "ada")
        assert [status(w, token)[0] for w in workers] == [200, 200]  # cached on both
        started = time.monotonic()
        reached = httpx.post(workers[0].base + "/signout", content=token).json()
        assert reached["reached_store"] is True
        while status(workers[1], token)[0] != 401:
            assert time.monotonic() - started < 5
            time.sleep(0.002)
        propagation = time.monotonic() - started
        answers = [status(workers[i % 2], token) for i in range(50)]
        assert answers == [(401, "the token has been revoked")] * 50
        assert propagation < 1.0
        other = mint(tokens, "bob")
        assert [status(w, other)[0] for w in workers] == [200, 200]
    finally:
        for worker in workers:
            worker.stop()


def test_a_worker_started_later_refuses_old_revocations_on_its_first_request(
    redis: Redis, tokens: TokenFactory
) -> None:
    first = Worker(redis.url)
    token = mint(tokens, "ada")
    try:
        assert httpx.post(first.base + "/signout", content=token).json()["reached_store"]
    finally:
        first.stop()
    later = Worker(redis.url)
    try:
        assert status(later, token) == (401, "the token has been revoked")
    finally:
        later.stop()


def test_redis_down_no_request_fails_and_revocations_catch_up(
    redis: Redis, tokens: TokenFactory
) -> None:
    """Redis killed mid-run: valid tokens keep 200 on every worker, no 5xx; a sign-out made
    meanwhile applies on its worker at once (not reaching the store) and reaches the other
    worker once Redis is back."""
    workers = [Worker(redis.url), Worker(redis.url)]
    try:
        valid, signed_out = mint(tokens, "ada"), mint(tokens, "bob")
        assert [status(w, signed_out)[0] for w in workers] == [200, 200]
        redis.stop(signal.SIGKILL)
        for i in range(40):
            assert status(workers[i % 2], valid)[0] == 200
        answer = httpx.post(workers[0].base + "/signout", content=signed_out).json()
        assert answer["reached_store"] is False
        assert status(workers[0], signed_out)[0] == 401
        assert status(workers[1], signed_out)[0] == 200  # it cannot know yet
        redis.start()  # same port, empty: the pending revocation is written on reconnect
        deadline = time.monotonic() + 5
        while status(workers[1], signed_out)[0] != 401:
            assert time.monotonic() < deadline, "not refused within 5 s of Redis returning"
            time.sleep(0.05)
        assert [status(w, valid)[0] for w in workers] == [200, 200]
    finally:
        for worker in workers:
            worker.stop()


def test_revocations_survive_a_restart_with_appendonly(
    tmp_path: Path, tokens: TokenFactory, flavour: str
) -> None:
    redis = Redis(tmp_path, appendonly=True, flavour=flavour).start()
    token = mint(tokens, "ada")
    worker = Worker(redis.url)
    try:
        assert httpx.post(worker.base + "/signout", content=token).json()["reached_store"]
    finally:
        worker.stop()
    redis.stop()  # SIGTERM: Redis flushes its append-only file
    redis.start()
    later = Worker(redis.url)
    try:
        assert status(later, token) == (401, "the token has been revoked")
    finally:
        later.stop()
        redis.stop()


@pytest.mark.parametrize(("mode", "expected"), [("serve", 200), ("refuse", 503)])
def test_on_unavailable_for_revocable_tokens(tmp_path: Path, tokens: TokenFactory, mode: str,
                                             expected: int, flavour: str) -> None:  # fmt: skip
    """With Redis down, "serve" answers on what it knows; "refuse" gives Back Office's
    (revocable) tokens 503 until revocations can be confirmed again."""
    redis = Redis(tmp_path, flavour=flavour).start()
    worker = Worker(redis.url, AUTHGATE_ON_UNAVAILABLE=mode)
    try:
        token = mint(tokens, "ada")
        assert status(worker, token)[0] == 200
        redis.stop(signal.SIGKILL)
        time.sleep(0.5)  # the subscription notices
        assert status(worker, token)[0] == expected
        assert status(worker, mint(tokens, "new"))[0] == expected
        redis.start()
        deadline = time.monotonic() + 5
        while status(worker, token)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        worker.stop()
        redis.stop()


def test_a_silent_redis_slows_only_the_store_paths(tokens: TokenFactory) -> None:
    """A Redis that accepts connections and never answers: the first request waits about the
    startup timeout (the denylist cannot load), later ones not at all; a sign-out returns
    within the timeout, not reaching the store."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    worker = Worker(url, AUTHGATE_STORE_TIMEOUT="0.1", AUTHGATE_STARTUP_TIMEOUT="0.5")
    try:
        token = mint(tokens, "ada")
        started = time.monotonic()
        assert status(worker, token)[0] == 200
        first = time.monotonic() - started
        timings = []
        for i in range(20):
            started = time.monotonic()
            assert status(worker, mint(tokens, f"user-{i}"))[0] == 200
            timings.append(time.monotonic() - started)
        started = time.monotonic()
        answer = httpx.post(worker.base + "/signout", content=token).json()
        signout = time.monotonic() - started
        assert answer["reached_store"] is False
        # Bounds with headroom for a loaded machine: what they tell apart is seconds (a store
        # timeout per request, or a sign-out waiting on the dead store) from tenths.
        assert first < 1.5  # about the startup timeout (0.5 s): the first request waited
        assert sorted(timings)[len(timings) // 2] < 0.1  # no store on a local verification
        assert signout < 1.5
    finally:
        worker.stop()
        listener.close()


# -- the same store in-process: two authenticators stand for two workers ---------------------


def pair(redis_url: str, **options: Any) -> list[Authenticator]:
    made = []
    for _ in range(2):
        store = RedisStore(redis_url, retry=0.1, **options)
        provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
        made.append(Authenticator([provider], store=store))
    return made


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def eventuallyrefused(auth: Authenticator, token: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            auth.authenticate(bearer(token))
        except RevokedToken:
            return
        assert time.monotonic() < deadline, "the revocation did not arrive"
        time.sleep(0.01)


def test_revocations_by_token_jti_and_subject_reach_the_other_authenticator(
    redis: Redis, tokens: TokenFactory
) -> None:
    a, b = pair(redis.url)
    try:
        by_token, by_jti = mint(tokens, "ada"), tokens.mint("bob", jti="j-1")
        by_subject, fresh = mint(tokens, "carol"), None
        for token in (by_token, by_jti, by_subject):
            assert b.authenticate(bearer(token)) is not None  # cached on b
        assert a.revoke(by_token) is True
        assert a.revoke(jti="j-1", expires_at=time.time() + 600) is True
        assert a.revoke(subject="carol", issuer=ISSUER) is True
        for token in (by_token, by_jti, by_subject):
            eventuallyrefused(b, token)
        fresh = tokens.mint("carol", iat=int(time.time()) + 1)  # issued after the sign-out
        time.sleep(1.1)
        assert b.authenticate(bearer(fresh)) is not None
    finally:
        a.close()
        b.close()


def test_a_revocation_made_while_redis_is_down_is_written_on_reconnect(
    redis: Redis, tokens: TokenFactory
) -> None:
    a, b = pair(redis.url)
    try:
        token = mint(tokens, "ada")
        assert b.authenticate(bearer(token)) is not None
        assert a.authenticate(bearer(mint(tokens, "x"))) is not None  # a's store is started
        redis.stop(signal.SIGKILL)
        assert a.revoke(token) is False  # kept, applied locally
        with pytest.raises(RevokedToken):
            a.authenticate(bearer(token))
        redis.start()
        eventuallyrefused(b, token)
    finally:
        a.close()
        b.close()


def test_records_that_are_not_ours_are_ignored(redis: Redis, tokens: TokenFactory) -> None:
    import redis as redis_py

    a, b = pair(redis.url)
    try:
        token = mint(tokens, "ada")
        assert b.authenticate(bearer(token)) is not None
        client = redis_py.Redis.from_url(redis.url)
        store = RedisStore(redis.url)
        junk = ["not ours", "t:short", "t:" + "zz" * 32, "j:", "s:not json", "s:[1,2]",
                's:[null,"ada","x"]', "x" * 5000]  # fmt: skip
        for member in junk:
            client.xadd(store.log_key, {"r": member, "u": "1e12"})
        client.xadd(store.log_key, {"something": "else"})
        client.xadd(store.log_key, {"r": "j:fine", "u": "not a number"})
        client.zadd(store.denylist_key, dict.fromkeys(junk, 1e12))
        client.close()
        assert a.revoke(token) is True  # the follower survived the junk
        eventuallyrefused(b, token)
        late, spare = pair(redis.url)  # a new worker loads the junk, and skips it
        try:
            assert late.authenticate(bearer(mint(tokens, "bob"))) is not None
            with pytest.raises(RevokedToken):
                late.authenticate(bearer(token))
        finally:
            late.close()
            spare.close()
    finally:
        a.close()
        b.close()


def test_store_settings_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="on_unavailable"):
        RedisStore(on_unavailable="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisStore(timeout=0)
    with pytest.raises(ConfigurationError, match="startup_timeout"):
        RedisStore(startup_timeout=0)
    provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
    with pytest.raises(ConfigurationError, match="RedisStore"):
        Authenticator([provider], store=object())  # type: ignore[arg-type]


# -- remote results and key sets, shared -------------------------------------------------------


def remote_workers(
    redis: Redis, idp: Any, issuer: Any, count: int, *, cooldown: float = 30.0
) -> list[Worker]:
    env = {
        "AUTHGATE_JWKS_COOLDOWN": str(cooldown),
        "AUTHGATE_INTROSPECTION_URL": idp.introspection_url,
        "AUTHGATE_CLIENT_ID": idp.client_id,
        "AUTHGATE_CLIENT_SECRET": idp.client_secret,
        "AUTHGATE_JWKS_URL": issuer.jwks_url,
        "AUTHGATE_ISSUER": issuer.url,
        # generous: on a loaded machine (CI with coverage, three workers, two cores) a store
        # call may take a second, and a worker whose call times out, or who waits longer than
        # the upstream timeout for another's result, rightly acts on its own (liveness over
        # deduplication), which these counts would see (once on a loaded 3.12 run at 3 s / 5 s)
        "AUTHGATE_STORE_TIMEOUT": "10.0",
        "AUTHGATE_UPSTREAM_TIMEOUT": "20.0",
        "AUTHGATE_STORE_SECRET": FLEET_SECRET,
    }
    return [Worker(redis.url, "tests.fleet_remote_app:app", **env) for _ in range(count)]


def test_a_new_opaque_token_on_every_worker_at_once_is_one_upstream_call(redis: Redis) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from authgate.testing import FakeIntrospection, LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        workers = remote_workers(redis, idp, issuer, 3)
        try:
            for round_ in range(3):
                token = idp.issue(f"user-{round_}")
                before = idp.calls(idp.PATH)
                targets = [workers[i % 3] for i in range(12)]
                with ThreadPoolExecutor(max_workers=12) as pool:
                    codes = list(pool.map(lambda w, t=token: status(w, t)[0], targets))
                assert codes == [200] * 12
                assert idp.calls(idp.PATH) - before == 1
        finally:
            for worker in workers:
                worker.stop()


def test_an_unknown_kid_flood_across_workers_fetches_the_keys_once(redis: Redis) -> None:
    """100 tokens naming ten unknown kids, spread over the workers: within the fleet's cooldown
    the JWKS is fetched once for the cold start and never for the flood (each worker meets
    every unknown kid five times). The cooldown is set longer than the flood can last on a
    loaded machine: a fetch after it is the policy working."""
    from concurrent.futures import ThreadPoolExecutor

    from authgate.testing import FakeIntrospection, LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        workers = remote_workers(redis, idp, issuer, 2, cooldown=600.0)
        try:
            valid = issuer.mint("ada")
            assert [status(w, valid)[0] for w in workers] == [200, 200]
            assert issuer.jwks_requests == 1  # the second worker took the first one's keys
            strangers = [
                TokenFactory(key=SigningKey("ES256", kid=f"unknown-{i}"), issuer=issuer.url)
                for i in range(10)
            ]
            flood = [strangers[i % 10].mint(f"u{i}") for i in range(100)]
            with ThreadPoolExecutor(max_workers=8) as pool:
                codes = list(pool.map(lambda i: status(workers[i % 2], flood[i])[0], range(100)))
            assert codes == [401] * 100
            assert issuer.jwks_requests == 1
        finally:
            for worker in workers:
                worker.stop()


def remote_pair(
    redis: Redis, idp: Any, issuer: Any, timeout: float = 3.0, secret: str | None = FLEET_SECRET
) -> list[Authenticator]:
    from authgate import (
        IntrospectionProvider,
        JWKSKeySource,
        JWTProvider,
        JWTVerifier,
        Upstream,
    )

    made = []
    for _ in range(2):
        providers = [
            IntrospectionProvider(
                "idp",
                idp.introspection_url,
                auth=ClientAuth.basic(idp.client_id, idp.client_secret),
                upstream=Upstream(timeout=timeout),
            ),
            JWTProvider(
                "local",
                JWTVerifier(
                    JWKSKeySource(issuer.jwks_url), algorithms=["ES256"], issuer=issuer.url
                ),
            ),
        ]
        store = RedisStore(redis.url, retry=0.1, secret=secret)
        made.append(Authenticator(providers, store=store))
    return made


def test_shared_results_and_keys_in_process(redis: Redis) -> None:
    """Two authenticators on one store, sync and async: the second takes the first's remote
    result and key set instead of calling out; a holder that is too slow is not waited for
    past the timeout."""
    import asyncio

    import redis as redis_py

    from authgate import KeyNotFound
    from authgate.testing import FakeIntrospection, LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        a, b = remote_pair(redis, idp, issuer, timeout=0.3)
        try:
            token, jwt = idp.issue("ada"), issuer.mint("bob")
            assert a.authenticate(bearer(token)) is not None
            assert a.authenticate(bearer(jwt)) is not None
            principal = asyncio.run(b.authenticate_async(bearer(token)))
            assert principal is not None
            assert principal.subject == "ada"
            assert asyncio.run(b.authenticate_async(bearer(jwt))) is not None
            assert (idp.calls(idp.PATH), issuer.jwks_requests) == (1, 1)
            stranger = TokenFactory(key=SigningKey("ES256", kid="nobody"), issuer=issuer.url)
            with pytest.raises(KeyNotFound):
                b.authenticate(bearer(stranger.mint("x")))
            assert issuer.jwks_requests == 1  # the fleet's cooldown: a took the lock
            # a holder that never finishes: after the timeout b calls upstream itself
            held = idp.issue("carol")
            client = redis_py.Redis.from_url(redis.url)
            from authgate._codec import sha256

            client.set(f"authgate:lock:rr:idp:{sha256(held).hex()}", "1", px=5000)
            client.close()
            started = time.monotonic()
            assert b.authenticate(bearer(held)) is not None
            assert 0.25 < time.monotonic() - started < 2.0
            assert idp.calls(idp.PATH) == 2
        finally:
            a.close()
            b.close()


def _plant(redis: Redis, issuer: Any, opaque: str, records: Callable[[dict[str, Any]], Any]) -> Any:
    """Write, as someone with write access to Redis would, a key set holding an attacker's key
    and a result vouching for an opaque string, each shaped by ``records``; the forger's key."""
    import redis as redis_py

    from authgate._codec import sha256

    forger = SigningKey("ES256", kid="planted")
    key_set = {
        "body": json.dumps({"keys": [forger.public_jwk()]}),
        "cache_control": "max-age=600",
        "fetched_at": time.time() + 86_400,
    }
    result = {"claims": {"sub": "mallory", "active": True}, "until": time.time() + 600}
    client = redis_py.Redis.from_url(redis.url)
    client.set(f"authgate:keys:{sha256(issuer.jwks_url).hex()}", records(key_set), px=60_000)
    client.set(f"authgate:rr:idp:{sha256(opaque).hex()}", records(result), px=60_000)
    client.close()
    return forger


PLANTED = [
    pytest.param(None, lambda value: __import__("json").dumps(value), id="no-secret-plain-json"),
    pytest.param(FLEET_SECRET, lambda value: __import__("json").dumps(value), id="plain-json"),
    pytest.param(
        FLEET_SECRET,
        lambda value: __import__("json").dumps(
            {"mac": "0" * 64, "value": __import__("json").dumps(value)}
        ),
        id="wrong-mac",
    ),
    pytest.param(FLEET_SECRET, lambda value: "[" * 10_000 + "]" * 10_000, id="deep-json"),
    pytest.param(FLEET_SECRET, lambda value: "\xff not json", id="not-json"),
]


@pytest.mark.parametrize(("secret", "records"), PLANTED)
def test_what_is_planted_in_redis_can_never_admit(
    secret: str | None, records: Callable[[dict[str, Any]], Any], redis: Redis
) -> None:
    """Redis can deny, never admit: a key set and a result written by whoever can write to
    Redis (without the fleet secret's HMAC, or garbage) are absent to a cold worker, which
    asks the identity provider itself: the forged token and the opaque string are refused."""
    from authgate import BadSignature, KeyNotFound
    from authgate.testing import FakeIntrospection, LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        opaque = "at_planted-opaque-string-0001"
        forger = _plant(redis, issuer, opaque, records)
        auth = remote_pair(redis, idp, issuer, secret=secret)[0]
        try:
            forged = TokenFactory(key=forger, issuer=issuer.url).mint("mallory")
            with pytest.raises((KeyNotFound, BadSignature)):
                auth.authenticate(bearer(forged))
            assert issuer.jwks_requests == 1  # the identity provider's own keys were fetched
            with pytest.raises(InvalidToken) as caught:
                auth.authenticate(bearer(opaque))
            assert caught.value.reason == "invalid_token"
            assert idp.calls(idp.PATH) == 1  # the identity provider was asked
            assert auth.authenticate(bearer(issuer.mint("ada"))) is not None  # still works
        finally:
            auth.close()


@pytest.mark.parametrize("age", [86_400.0 * 30, 601.0])
def test_an_authentic_key_set_past_its_freshness_is_absent(redis: Redis, age: float) -> None:
    """A key set a worker shared once (its HMAC genuine), written back by whoever can write to
    Redis after the identity provider retired a key in it, or simply outliving its freshness:
    its age counts from when it was fetched, so a cold worker fetches the current set itself
    and a token signed with the retired key is refused."""
    from authgate import BadSignature, KeyNotFound
    from authgate._codec import sha256
    from authgate.testing import FakeIntrospection, LocalIssuer

    retired = SigningKey("ES256", kid="retired")
    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        old = {
            "body": json.dumps({"keys": [retired.public_jwk(), issuer.factory.key.public_jwk()]}),
            "cache_control": "max-age=600",
            "fetched_at": time.time() - age,
        }
        genuine = RedisStore(redis.url, secret=FLEET_SECRET)
        assert genuine.set_json(f"keys:{sha256(issuer.jwks_url).hex()}", old, 60)
        genuine.close()
        auth = remote_pair(redis, idp, issuer)[0]
        try:
            forged = TokenFactory(key=retired, issuer=issuer.url).mint("mallory")
            with pytest.raises((KeyNotFound, BadSignature)):
                auth.authenticate(bearer(forged))
            assert issuer.jwks_requests == 1  # the identity provider's current keys
            assert auth.authenticate(bearer(issuer.mint("ada"))) is not None
        finally:
            auth.close()


def test_an_authentic_record_moved_or_stale_is_absent(redis: Redis) -> None:
    """With the secret, a record is bound to its key (copied under another key it fails its
    HMAC) and re-checked on read: an inactive answer or a past exp is absent."""
    import redis as redis_py

    store = RedisStore(redis.url, timeout=0.5, retry=30, secret=FLEET_SECRET)
    client = redis_py.Redis.from_url(redis.url)
    try:
        assert store.set_json("rr:idp:aa", {"claims": {"sub": "a"}, "until": 2e9}, 60)
        assert store.get_json("rr:idp:aa") == {"claims": {"sub": "a"}, "until": 2e9}
        client.set("authgate:rr:idp:bb", client.get("authgate:rr:idp:aa") or b"", px=60_000)
        assert store.get_json("rr:idp:bb") is None  # moved: its HMAC names another key
        with pytest.raises(ConfigurationError, match="32 bytes"):
            RedisStore(redis.url, secret="short")
        unshared = RedisStore(redis.url, timeout=0.5, retry=30)
        assert (unshared.shares, store.shares) == (False, True)
        assert unshared.get_json("rr:idp:aa") is None  # without a secret nothing is read
        assert unshared.set_json("rr:idp:cc", {"x": 1}, 60) is False
        unshared.close()
    finally:
        client.close()
        store.close()
    from authgate.testing import FakeIntrospection

    with FakeIntrospection() as idp:
        from authgate import IntrospectionProvider

        provider = IntrospectionProvider(
            "idp", idp.introspection_url, auth=ClientAuth.basic(idp.client_id, idp.client_secret)
        )
        auth = Authenticator([provider], store=RedisStore(redis.url, secret=FLEET_SECRET))
        try:
            from authgate._codec import sha256

            for stale in ({"sub": "m", "active": False}, {"sub": "m", "exp": time.time() - 5}):
                token = idp.issue("m", active=False)
                shared = RedisStore(redis.url, secret=FLEET_SECRET)
                shared.set_json(
                    f"rr:idp:{sha256(token).hex()}", {"claims": stale, "until": 2e9}, 60
                )
                shared.close()
                with pytest.raises(InvalidToken):
                    auth.authenticate(bearer(token))
            assert idp.calls(idp.PATH) == 2  # each stale record absent: the server was asked
        finally:
            auth.close()


def test_a_silent_redis_costs_remote_verification_one_timeout_per_interval() -> None:
    """Remote verification consults the store; against a Redis that never answers, the first
    miss pays about one store timeout, and the next misses (within the retry interval) none."""
    from authgate import IntrospectionProvider
    from authgate.testing import FakeIntrospection

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    with FakeIntrospection() as idp:
        provider = IntrospectionProvider(
            "idp", idp.introspection_url, auth=ClientAuth.basic(idp.client_id, idp.client_secret)
        )
        store = RedisStore(url, timeout=0.5, retry=30, secret=FLEET_SECRET, startup_timeout=0.5)
        auth = Authenticator([provider], store=store)
        try:
            timings = []
            for i in range(6):
                started = time.monotonic()
                assert auth.authenticate(bearer(idp.issue(f"u{i}"))) is not None
                timings.append(time.monotonic() - started)
            # What the bounds tell apart is a store timeout (0.5 s) from a few milliseconds,
            # with headroom for a loaded machine.
            assert timings[0] < 3  # the startup wait (0.5 s) and one store call gave up
            assert max(timings[1:]) < 0.25  # the store is skipped for the retry interval
            assert idp.calls(idp.PATH) == 6
        finally:
            auth.close()
            listener.close()


def test_async_revocations_use_the_asyncio_client(redis: Redis, tokens: TokenFactory) -> None:
    """revoke_async writes through redis-py's asyncio client on the running loop (closed by
    aclose); the other authenticator refuses the token; with Redis gone it reports False."""
    import asyncio

    a, b = pair(redis.url, timeout=1.0)  # the first async call connects: no 50 ms bound
    token, later = mint(tokens, "ada"), mint(tokens, "bob")

    async def main() -> tuple[bool, bool]:
        assert await a.authenticate_async(bearer(token)) is not None
        assert b.authenticate(bearer(token)) is not None  # b's subscription is up
        reached = await a.revoke_async(token)
        eventuallyrefused(b, token)
        redis.stop(signal.SIGKILL)
        kept = await a.revoke_async(later)
        await a.aclose()
        return reached, kept

    try:
        assert asyncio.run(main()) == (True, False)
    finally:
        a.close()
        b.close()


def test_the_store_primitives(redis: Redis) -> None:
    """get/set JSON, the fleet lock, junk values, sync and async; after a failed call the
    store is skipped (answers without waiting) for the retry interval."""
    import asyncio

    import redis as redis_py

    store = RedisStore(redis.url, timeout=0.2, retry=30, secret=FLEET_SECRET)
    try:
        assert store.set_json("x", {"a": 1}, 5)
        assert store.get_json("x") == {"a": 1}
        assert store.get_json("absent") is None
        redis_py.Redis.from_url(redis.url).set("authgate:junk", "{not json")
        assert store.get_json("junk") is None
        assert store.try_lock("l", 5) is True
        assert store.try_lock("l", 5) is False
        assert (store.claim("c", 5), store.claim("c", 5)) == (True, False)

        async def main() -> tuple[Any, ...]:
            results = (
                await store.set_json_async("y", [1], 5),
                await store.get_json_async("y"),
                await store.get_json_async("junk"),
                await store.try_lock_async("m", 5),
                await store.try_lock_async("m", 5),
                await store.claim_async("d", 5),
                await store.claim_async("d", 5),
            )
            await store.aclose()
            return results

        assert asyncio.run(main()) == (True, [1], None, True, False, True, False)
        redis.stop(signal.SIGKILL)
        assert store.get_json("x") is None  # fails, then skipped for 30 s
        started = time.monotonic()
        assert store.get_json("x") is None
        assert store.set_json("x", 1, 5) is False
        assert store.try_lock("n", 5) is True  # liveness: act alone
        assert store.claim("o", 5) is None  # unknown: the caller decides
        assert time.monotonic() - started < 0.05
    finally:
        store.close()


class FreezableProxy:
    """A TCP proxy on 127.0.0.1 in front of Redis that the test can freeze: bytes stop flowing
    both ways while the connections stay open (a silent partition), then flow again."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.frozen = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and not self._closed:
                    time.sleep(0.01)  # held, not dropped: the peer sees silence
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def wait_until(condition: Callable[[], bool], within: float) -> float:
    """Seconds until ``condition`` held; fails the test after ``within``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "not within the bound"
        time.sleep(0.02)
    return time.monotonic() - started


def fleet_pair(url: str, **options: Any) -> list[Authenticator]:
    """Two Back Office authenticators (revocable tokens) sharing one store each on ``url``."""
    return [
        Authenticator(
            [BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])],
            store=RedisStore(url, timeout=0.05, retry=0.2, **options),
        )
        for _ in range(2)
    ]


def test_a_signout_whose_write_fails_once_is_retried_until_the_fleet_has_it(
    redis: Redis, tokens: TokenFactory
) -> None:
    """Redis stalls writes (CLIENT PAUSE WRITE) while the subscription stays up: revoke()
    says the fleet does not have it yet, the write is retried in the background, and the other
    worker refuses the token once Redis takes writes again; nobody turns to 503."""
    import redis as redis_py

    a, b = fleet_pair(redis.url, on_unavailable="refuse")
    admin = redis_py.Redis.from_url(redis.url)
    try:
        token = mint(tokens, "ada")
        assert a.authenticate(bearer(token)) is not None
        assert b.authenticate(bearer(token)) is not None
        admin.client_pause(700, all=False)  # WRITE: writes wait, reads and PINGs go on
        assert a.revoke(token) is False  # not stored yet: kept for the background retry
        assert a.store is not None
        assert a.store.subscribed  # a failed write does not mark the subscription down
        waited = wait_until(lambda: refused(b, token), within=8.0)
        assert waited > 0.3  # it came after the pause, from the retry
        assert b.authenticate(bearer(mint(tokens, "bo"))) is not None  # no 503 meanwhile
        with pytest.raises(RevokedToken):
            a.authenticate(bearer(token))
    finally:
        admin.close()
        a.close()
        b.close()


def refused(auth: Authenticator, token: str) -> bool:
    """Whether ``auth`` refuses ``token`` as revoked."""
    try:
        auth.authenticate(bearer(token))
    except RevokedToken:
        return True
    return False


def test_a_silent_partition_is_noticed_and_healed_by_itself(
    redis: Redis, tokens: TokenFactory
) -> None:
    """The link to Redis goes silent (a frozen proxy: no error, no bytes): within the
    heartbeat's bound the worker knows its view is stale and, in refuse mode, answers 503 for
    revocable tokens; when the link flows again it reloads and serves by itself."""
    from authgate import ProviderUnavailable

    proxy = FreezableProxy(redis.port)
    auth = Authenticator(
        [BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])],
        store=RedisStore(proxy.url, timeout=0.2, retry=0.2, on_unavailable="refuse"),
        cache=None,
    )
    try:
        assert auth.authenticate(bearer(mint(tokens, "ada"))) is not None
        assert auth.store is not None
        assert auth.store.subscribed
        proxy.frozen.set()
        noticed = wait_until(lambda: not auth.store.subscribed, within=5.0)  # type: ignore[union-attr]
        assert noticed < 4.0  # the heartbeat's bound: 2 s of silence, plus a check
        with pytest.raises(ProviderUnavailable):
            auth.authenticate(bearer(mint(tokens, "bo")))
        proxy.frozen.clear()
        wait_until(lambda: auth.store.subscribed, within=10.0)  # type: ignore[union-attr]
        assert auth.authenticate(bearer(mint(tokens, "cy"))) is not None
    finally:
        auth.close()
        proxy.close()


def test_a_new_worker_serves_only_once_it_knows_the_whole_denylist(
    redis: Redis, tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """20,000 revocations in Redis, the one that matters written last: a new worker's first
    request waits for all of them (startup_timeout) and refuses the revoked token; with a
    startup_timeout too short for the load, a serve-mode worker says so at WARNING."""
    import logging

    import redis as redis_py

    jti = "jti-revoked-last"
    token = tokens.mint("gone", iat=int(time.time()) - 5, jti=jti)
    until = time.time() + 3600
    denylist = RedisStore(redis.url).denylist_key
    client = redis_py.Redis.from_url(redis.url)
    client.zadd(denylist, {f'j:"other-{i}"': until for i in range(20_000)})  # jti as JSON
    client.zadd(denylist, {f'j:"{jti}"': until})
    client.close()

    def worker(**options: Any) -> Authenticator:
        provider = BackOfficeProvider(ISSUER, KeySet.from_secret(SECRET), algorithms=["HS256"])
        return Authenticator([provider], store=RedisStore(redis.url, timeout=2.0, **options))

    patient = worker()
    try:
        with pytest.raises(RevokedToken):
            patient.authenticate(bearer(token))  # the very first request, after the whole load
    finally:
        patient.close()
    hasty = worker(startup_timeout=0.001)
    try:
        with caplog.at_level(logging.WARNING, logger="authgate.store"):
            hasty.authenticate(bearer(mint(tokens, "someone")))
        assert "was not loaded within" in caplog.text
    finally:
        hasty.close()


def test_failed_sign_outs_are_kept_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Redis unreachable: each sign-out is kept for the background retry and reported as not
    reaching the fleet; the warning is one line for the episode, not one per sign-out."""
    import logging

    store = RedisStore(
        f"redis://127.0.0.1:{free_port()}/0", timeout=0.05, retry=30, startup_timeout=0.5
    )
    try:
        with caplog.at_level(logging.WARNING, logger="authgate.store"):
            reached = [
                store.publish({"kind": "jti", "jti": f"j{i}", "until": time.time() + 60})
                for i in range(3)
            ]
        assert reached == [False, False, False]
        assert len(store._pending) == 3
        written = [r for r in caplog.records if "could not be written" in r.getMessage()]
        assert len(written) == 1
    finally:
        store.close()


def test_a_dpop_proof_replayed_to_another_worker_isrefused(
    redis: Redis, tokens: TokenFactory
) -> None:
    """Two workers behind one public URL: a proof accepted by one is refused by the other
    (its id claimed in Redis); a fresh proof passes on either."""
    from authgate.testing import DPoPClient

    public = "https://api.example.com"
    workers = [Worker(redis.url, AUTHGATE_PUBLIC_URL=public) for _ in range(2)]
    try:
        client = DPoPClient()
        token = tokens.mint("ada", cnf=client.cnf, iat=int(time.time()) - 5)
        proof = client.headers(token, "GET", public + "/whoami")
        first = httpx.get(workers[0].base + "/whoami", headers=proof)
        assert first.status_code == 200
        replayed = httpx.get(workers[1].base + "/whoami", headers=proof)
        assert replayed.status_code == 401
        assert replayed.json()["message"] == "the proof was used before (jti)"
        for worker in workers:
            fresh = client.headers(token, "GET", public + "/whoami")
            assert httpx.get(worker.base + "/whoami", headers=fresh).status_code == 200
    finally:
        for worker in workers:
            worker.stop()


def test_dpop_replays_are_claimed_fleet_wide_without_a_secret_on_the_sync_path(
    redis: Redis,
) -> None:
    """WSGI workers (the sync path) share proof ids through Redis with no fleet secret: a
    claim can only refuse."""
    from authgate import JWTProvider, JWTVerifier
    from authgate.errors import InvalidDPoPProof
    from authgate.testing import DPoPClient

    factory = TokenFactory("ES256", issuer="https://dpop.test")
    stores = [RedisStore(redis.url, timeout=0.5) for _ in range(2)]
    try:
        auths = [
            Authenticator(
                [JWTProvider("idp", JWTVerifier(factory.keyset(), algorithms=["ES256"],
                                                issuer="https://dpop.test"))],
                store=store,
            )
            for store in stores
        ]  # fmt: skip
        client = DPoPClient()
        token = factory.mint("ada", cnf=client.cnf)
        uri = "https://api.example.com/me"
        headers = client.headers(token, "GET", uri)
        assert auths[0].authenticate(headers, method="GET", uri=uri) is not None
        with pytest.raises(InvalidDPoPProof, match="used before"):
            auths[1].authenticate(headers, method="GET", uri=uri)
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_new_issuer_bound_holds_for_the_whole_fleet(redis: Redis, path: str) -> None:
    """Two workers with one store and a permissive tenant callable: together they discover at
    most max_new new issuers a window; the rest are 503 with Retry-After and no network call."""
    import asyncio

    from authgate import MultiTenantProvider, ProviderUnavailable, TenantLimits, Upstream
    from authgate.testing import FakeTenants

    # a pinned clock: the windows are fixed slots, and a run must not straddle two
    pinned = time.time() // 60 * 60 + 30

    with FakeTenants(["contoso", "outsider"]) as idp:
        stores = [RedisStore(redis.url, timeout=0.5, secret=FLEET_SECRET) for _ in range(2)]
        try:
            auths = [
                Authenticator(
                    [MultiTenantProvider("entra", idp.issuer_template, tenants=lambda t: True,
                                         limits=TenantLimits(max_new=5, new_window=60),
                                         upstream=Upstream(clock=lambda: pinned))],
                    store=store, cache=None,
                )
                for store in stores
            ]  # fmt: skip
            stranger = idp.factories["outsider"]
            stranger.clock = lambda: pinned
            waits: list[float] = []
            for i in range(20):
                token = stranger.mint("mallory", iss=idp.issuer(f"t-{i:03d}"))
                auth = auths[i % 2]
                try:
                    if path == "sync":
                        auth.authenticate(bearer(token))
                    else:
                        asyncio.run(auth.authenticate_async(bearer(token)))
                except ProviderUnavailable as exc:
                    waits.append(exc.retry_after)
                except KeySourceUnavailable:
                    pass  # a discovery was tried (this fake knows no such tenant)
            discoveries = sum(
                idp.calls(f"/t-{i:03d}/v2.0/.well-known/openid-configuration") for i in range(20)
            )
            assert discoveries == 5  # per worker alone it would be 10
            assert len(waits) == 15
            assert all(wait >= 1 for wait in waits)
        finally:
            for store in stores:
                store.close()
