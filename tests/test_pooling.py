"""Pooled connections and their lifecycle, against real servers on 127.0.0.1.

Each provider or key source keeps one sync client and one async client per event loop;
connections are reused between calls and closed by ``Authenticator.close()``/``aclose()``,
by the ASGI lifespan, by the end of the event loop, or when the provider is dropped.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from authgate import (
    Authenticator,
    ClientAuth,
    IntrospectionProvider,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
    ProviderUnavailable,
    Upstream,
)
from authgate.asgi import AuthGateMiddleware, Message, Receive, Scope, Send
from authgate.testing import FakeIntrospection, LocalIssuer, serve_asgi

from .apps import starlette_app


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"authorization": f"Bearer {token}"}


def eventually(condition: Callable[[], bool], within: float = 2.0) -> bool:
    """Whether ``condition`` holds within ``within`` seconds (a server sees a close late)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def idp() -> Iterator[FakeIntrospection]:
    with FakeIntrospection() as server:
        yield server


def introspection(idp: FakeIntrospection, timeout: float | None = None) -> IntrospectionProvider:
    return IntrospectionProvider(
        "idp",
        idp.introspection_url,
        auth=ClientAuth.basic(idp.client_id, idp.client_secret),
        upstream=Upstream(timeout=timeout) if timeout else None,
    )


def test_sync_calls_reuse_one_connection_until_close(idp: FakeIntrospection) -> None:
    """Twenty cache misses, one connection; close() ends it, and a later call opens another."""
    auth = Authenticator([introspection(idp)])
    for i in range(20):
        principal = auth.authenticate(bearer(idp.issue(f"user-{i}")))
        assert principal is not None
        assert principal.subject == f"user-{i}"
    assert idp.calls(idp.PATH) == 20
    assert idp.accepted == 1
    auth.close()
    assert eventually(lambda: idp.open_connections == 0)
    assert auth.authenticate(bearer(idp.issue("after"))) is not None
    assert idp.accepted == 2
    auth.close()
    auth.close()  # twice is fine
    assert eventually(lambda: idp.open_connections == 0)


def test_a_context_manager_closes_the_connections(idp: FakeIntrospection) -> None:
    with Authenticator([introspection(idp)]) as auth:
        assert auth.authenticate(bearer(idp.issue())) is not None
        assert idp.open_connections == 1
    assert eventually(lambda: idp.open_connections == 0)


def test_one_async_client_per_event_loop_closed_when_the_loop_ends(
    idp: FakeIntrospection,
) -> None:
    """Within a loop, calls share a connection; each asyncio.run gets its own client, closed
    when that loop shuts down, with no close() call and no ResourceWarning."""
    auth = Authenticator([introspection(idp)])

    async def many(prefix: str) -> list[str]:
        principals = [
            await auth.authenticate_async(bearer(idp.issue(f"{prefix}-{i}"))) for i in range(10)
        ]
        return [p.subject for p in principals if p is not None]

    assert asyncio.run(many("a")) == [f"a-{i}" for i in range(10)]
    assert idp.accepted == 1
    assert eventually(lambda: idp.open_connections == 0)  # the loop's end closed it
    assert asyncio.run(many("b")) == [f"b-{i}" for i in range(10)]
    assert idp.accepted == 2
    assert eventually(lambda: idp.open_connections == 0)


def test_concurrent_async_calls_in_one_loop_share_the_pool(idp: FakeIntrospection) -> None:
    """Fifty concurrent cache misses on one loop: at most the pool's connections, reused."""
    auth = Authenticator([introspection(idp)])
    tokens = [idp.issue(f"user-{i}") for i in range(50)]

    async def main() -> list[str]:
        async with auth:
            results = await asyncio.gather(*(auth.authenticate_async(bearer(t)) for t in tokens))
            second = [await auth.authenticate_async(bearer(idp.issue("x"))) for _ in range(5)]
        assert all(p is not None for p in second)
        return [p.subject for p in results if p is not None]

    assert asyncio.run(main()) == [f"user-{i}" for i in range(50)]
    assert idp.calls(idp.PATH) == 55
    assert idp.accepted <= 50
    assert eventually(lambda: idp.open_connections == 0)


def test_aclose_closes_this_loops_client_at_once(idp: FakeIntrospection) -> None:
    auth = Authenticator([introspection(idp)])

    async def main() -> int:
        assert await auth.authenticate_async(bearer(idp.issue())) is not None
        opened = idp.open_connections
        await auth.aclose()
        assert eventually(lambda: idp.open_connections == 0)
        assert await auth.authenticate_async(bearer(idp.issue())) is not None  # reopens
        return opened

    assert asyncio.run(main()) == 1
    assert idp.accepted == 2


def test_a_dropped_provider_closes_its_connections(idp: FakeIntrospection) -> None:
    """No close() at all: when the provider is garbage, its pooled client is closed (and no
    socket is left for a ResourceWarning)."""
    auth = Authenticator([introspection(idp)])
    assert auth.authenticate(bearer(idp.issue())) is not None
    assert idp.open_connections == 1
    del auth
    gc.collect()
    assert eventually(lambda: idp.open_connections == 0)


def test_key_fetches_reuse_the_sources_connection() -> None:
    """A JWKS source refetching on unknown kids keeps one connection; close() ends it."""
    with LocalIssuer("RS256") as issuer:
        source = JWKSKeySource(issuer.jwks_url, policy=KeyFetchPolicy(cooldown=0))
        auth = Authenticator(
            [JWTProvider("local", JWTVerifier(source, algorithms=["RS256"], issuer=issuer.url))]
        )
        for i in range(3):
            issuer.rotate()
            assert auth.authenticate(bearer(issuer.mint(f"user-{i}"))) is not None
        assert issuer.jwks_requests == 3
        assert issuer.accepted == 1
        auth.close()
        assert eventually(lambda: issuer.open_connections == 0)


def test_a_reused_connection_is_still_cut_at_the_total_deadline(
    idp: FakeIntrospection,
) -> None:
    """The total deadline binds pooled connections too: after a good exchange, the same
    connection dribbling headers (a line a second) is cut after the 0.5 s timeout."""
    auth = Authenticator([introspection(idp, timeout=0.5)])
    assert auth.authenticate(bearer(idp.issue())) is not None
    idp.fault = "slow-headers"
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        auth.authenticate(bearer(idp.issue("second")))
    assert time.monotonic() - started < 1.5
    assert "too slow" in caught.value.detail
    assert idp.accepted == 1  # the slow answer came on the kept-alive connection
    auth.close()


def test_a_stopped_server_is_not_answered_by_a_kept_alive_connection() -> None:
    """A pooled connection to a server that went away fails as unreachable, not as a hang."""
    server = FakeIntrospection()
    server.start()
    auth = Authenticator([introspection(server)])
    assert auth.authenticate(bearer(server.issue())) is not None
    token = server.issue("later")
    server.stop()
    with pytest.raises(ProviderUnavailable) as caught:
        auth.authenticate(bearer(token))
    assert "unreachable" in caught.value.detail
    auth.close()


@pytest.mark.parametrize("lifespan", [True, False], ids=["lifespan", "no-lifespan"])
def test_uvicorn_closes_the_pool_at_shutdown(idp: FakeIntrospection, lifespan: bool) -> None:
    """Under uvicorn, remote verification uses the loop's pooled client; at shutdown the
    lifespan closes it (with lifespan off, the loop's end does), leaving no open socket."""
    auth = Authenticator([introspection(idp)])
    app = AuthGateMiddleware(starlette_app(), auth)
    with serve_asgi(app, lifespan=lifespan) as base_url, httpx.Client(base_url=base_url) as web:
        for i in range(5):
            answer = web.get("/whoami", headers=bearer(idp.issue(f"user-{i}")))
            assert answer.status_code == 200
            assert answer.json()["subject"] == f"user-{i}"
        assert idp.accepted == 1
        assert idp.open_connections == 1
    assert eventually(lambda: idp.open_connections == 0)


def test_the_lifespan_still_reaches_the_app(idp: FakeIntrospection) -> None:
    """The middleware passes startup and shutdown through to the app, closing its pool
    before the shutdown is reported."""
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    auth = Authenticator([introspection(idp)])
    middleware = AuthGateMiddleware(app, auth)
    sent: list[str] = []

    async def main() -> None:
        assert await auth.authenticate_async(bearer(idp.issue())) is not None
        inbox: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> Message:
            return inbox.pop(0)

        async def send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                assert eventually(lambda: idp.open_connections == 0)
            sent.append(str(message["type"]))

        await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    asyncio.run(main())
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
