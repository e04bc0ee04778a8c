"""The frameworks guide's Falcon, Quart and Litestar recipes under real servers (gunicorn sync
and gthread, uvicorn, hypercorn): valid, missing, expired, forged and revoked tokens, and an API
key; Litestar's guard on a scope."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from authgate.testing import SigningKey, TokenFactory, free_port

from .frameworks_site import API_KEY, ISSUER
from .processes import served

SECRET = secrets.token_urlsafe(32)
TOKENS = TokenFactory(key=SigningKey("HS256", private=SECRET.encode()), issuer=ISSUER)
SITE = "tests.frameworks_site"

SERVERS = {
    "falcon-gunicorn-sync": ["-m", "gunicorn", "-w", "1", "-k", "sync", f"{SITE}:falcon_wsgi()"],
    "falcon-gunicorn-gthread": [
        "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4", f"{SITE}:falcon_wsgi()",
    ],
    "falcon-asgi-uvicorn": ["-m", "uvicorn", "--factory", f"{SITE}:falcon_asgi"],
    "quart-uvicorn": ["-m", "uvicorn", "--factory", f"{SITE}:quart"],
    "quart-hypercorn": ["-m", "hypercorn", f"{SITE}:quart()"],
    "litestar-uvicorn": ["-m", "uvicorn", "--factory", f"{SITE}:litestar_app"],
}  # fmt: skip


def bind(name: str, port: int) -> list[str]:
    if "gunicorn" in name:
        return ["--bind", f"127.0.0.1:{port}"]
    if "hypercorn" in name:
        return ["--bind", f"127.0.0.1:{port}"]
    return ["--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module", params=sorted(SERVERS))
def base(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    with served([*SERVERS[request.param], *bind(request.param, port)], port,
                {"AUTHGATE_TEST_SECRET": SECRET}) as url:  # fmt: skip
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_recipe_under_a_real_server(base: str) -> None:
    token = TOKENS.mint("alice")
    for _ in range(2):  # verified, then from the cache
        answer = httpx.get(base + "/me", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"me": "alice"}
    assert httpx.get(base + "/me", headers={"x-api-key": API_KEY}).json() == {
        "me": "billing-service"
    }
    missing = httpx.get(base + "/me")
    assert missing.status_code == 401
    assert missing.headers.get_list("www-authenticate")[0] == 'Bearer realm="api"'
    for bad, reason in (
        (TOKENS.mint("alice", exp=int(time.time()) - 60), "expired"),
        (TokenFactory("HS256", issuer=ISSUER).mint("alice"), "signature"),
    ):
        refused = httpx.get(base + "/me", headers=bearer(bad))
        assert refused.status_code == 401
        assert reason in refused.json()["message"]
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    signed_out = TOKENS.mint("bob")
    assert httpx.get(base + "/me", headers=bearer(signed_out)).status_code == 200
    assert httpx.post(base + "/signout", headers=bearer(token), content=signed_out).json() == {
        "ok": True
    }
    revoked = httpx.get(base + "/me", headers=bearer(signed_out))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["message"]
    assert httpx.get(base + "/me", headers=bearer(token)).status_code == 200


def test_a_litestar_guard_reads_the_principals_scopes() -> None:
    """Litestar's own idiom over the middleware: a guard on ``connection.auth.scopes``."""
    port = free_port()
    command = [*SERVERS["litestar-uvicorn"], *bind("litestar-uvicorn", port)]
    with served(command, port, {"AUTHGATE_TEST_SECRET": SECRET}) as base:
        scoped = httpx.get(
            base + "/orders", headers=bearer(TOKENS.mint("carol", scope="orders:read"))
        )
        assert scoped.status_code == 200, scoped.text
        assert scoped.json() == {"orders": "carol"}
        assert httpx.get(base + "/orders", headers={"x-api-key": API_KEY}).status_code == 200
        unscoped = httpx.get(base + "/orders", headers=bearer(TOKENS.mint("dave")))
        assert unscoped.status_code == 403
        assert "orders:read" in unscoped.text
        assert httpx.get(base + "/orders").status_code == 401
