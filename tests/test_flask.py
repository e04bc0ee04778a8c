"""authgate.flask: the extension and its decorators, in-process and under a real server
(gunicorn with sync and gthread workers): valid, missing, expired, forged and revoked tokens,
an API key, scopes, roles, DPoP."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask, g

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    ConfigurationError,
    JWTProvider,
    JWTVerifier,
    KeySet,
)
from authgate.flask import AuthGate, current_principal, require_auth, require_roles, require_scopes
from authgate.testing import DPoPClient, SigningKey, TokenFactory, free_port

from .processes import served

ISSUER = "https://flask.test"
API_KEY = "fk_live_0123456789abcdefghijklmnop"


def build(secret: bytes, **options: object) -> Flask:
    """The app the tests and the gunicorn workers serve."""
    ring = APIKeyRing(prefixes=("fk_",))
    ring.add(API_KEY, subject="billing-service", scopes=["orders:read"])
    verifier = JWTVerifier(KeySet.from_secret(secret), algorithms=["HS256"], issuer=ISSUER)
    auth = Authenticator(
        [JWTProvider("idp", verifier, role_claims=["roles"]), APIKeyProvider("keys", ring)]
    )
    app = Flask(__name__)
    AuthGate(app, auth, **options)  # type: ignore[arg-type]

    @app.get("/whoami")
    def whoami() -> dict[str, object]:
        principal = current_principal()
        return {"user": principal.identity if principal else None, "g": g.principal is principal}

    @app.get("/private")
    @require_auth
    def private() -> dict[str, object]:
        return {"user": g.principal.identity}

    @app.get("/orders")
    @require_scopes("orders:read")
    def orders() -> dict[str, object]:
        return {"orders": [], "user": g.principal.identity}

    @app.get("/admin")
    @require_roles("admin")
    def admin() -> dict[str, object]:
        return {"ok": True}

    @app.post("/signout")
    def signout() -> dict[str, object]:
        from flask import request

        auth.revoke(request.get_data(as_text=True))
        return {"ok": True}

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app


def app_factory() -> Flask:
    """gunicorn's entry point: the secret from the environment."""
    return build(os.environ["AUTHGATE_TEST_SECRET"].encode())


SECRET = secrets.token_urlsafe(32)
TOKENS = TokenFactory(key=SigningKey("HS256", private=SECRET.encode()), issuer=ISSUER)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=["sync", "gthread"])
def base(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    args = ["-m", "gunicorn", "-w", "1", "-k", request.param]
    args += ["--threads", "4"] if request.param == "gthread" else []
    args += ["--bind", f"127.0.0.1:{port}", "tests.test_flask:app_factory()"]
    with served(args, port, {"AUTHGATE_TEST_SECRET": SECRET}) as url:
        yield url


def test_under_gunicorn(base: str) -> None:
    reader = TOKENS.mint("alice", scope="orders:read")
    for _ in range(2):
        assert httpx.get(base + "/whoami", headers=bearer(reader)).json() == {
            "user": "alice",
            "g": True,
        }
    assert httpx.get(base + "/whoami").json() == {"user": None, "g": True}
    keyed = httpx.get(base + "/orders", headers={"x-api-key": API_KEY})
    assert keyed.json()["user"] == "billing-service"
    assert keyed.headers["vary"] == "x-api-key"  # a cache in front keeps it to this key
    assert "vary" not in httpx.get(base + "/whoami", headers=bearer(reader)).headers
    missing = httpx.get(base + "/private")
    assert missing.status_code == 401
    assert missing.headers.get_list("www-authenticate")[0] == 'Bearer realm="api"'
    assert missing.json()["statusCode"] == 401
    for token, reason in (
        (TOKENS.mint("a", exp=int(time.time()) - 60), "expired"),
        (TokenFactory("HS256", issuer=ISSUER).mint("a"), "signature"),
    ):
        refused = httpx.get(base + "/whoami", headers=bearer(token))
        assert refused.status_code == 401
        assert reason in refused.json()["message"]
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    scopeless = httpx.get(base + "/orders", headers=bearer(TOKENS.mint("bob")))
    assert scopeless.status_code == 403
    assert (
        'error="insufficient_scope", error_description="missing scope: orders:read"'
        in (scopeless.headers["www-authenticate"])
    )
    assert httpx.get(base + "/admin", headers=bearer(reader)).status_code == 403
    admin = TOKENS.mint("root", roles=["admin"])
    assert httpx.get(base + "/admin", headers=bearer(admin)).json() == {"ok": True}
    revoked = TOKENS.mint("carol")
    assert httpx.get(base + "/whoami", headers=bearer(revoked)).status_code == 200
    httpx.post(base + "/signout", content=revoked)  # one worker: it holds the denylist
    gone = httpx.get(base + "/whoami", headers=bearer(revoked))
    assert (gone.status_code, gone.json()["message"]) == (401, "the token has been revoked")


def test_required_and_excluded_paths() -> None:
    app = build(SECRET.encode(), required=True, exclude_paths=["/health"])
    client = app.test_client()
    assert client.get("/whoami").status_code == 401
    assert client.get("/health").text == "ok"
    assert (client.get("/whoami", headers=bearer(TOKENS.mint("a"))).json or {})["user"] == "a"


def test_dpop_under_flask() -> None:
    client = DPoPClient()
    token = TOKENS.mint("alice", cnf=client.cnf)
    test = build(SECRET.encode()).test_client()
    ok = test.get("/whoami", headers=client.headers(token, "GET", "http://localhost/whoami"))
    assert ok.json == {"user": "alice", "g": True}
    stolen = test.get("/whoami", headers=bearer(token))
    assert stolen.status_code == 401
    assert len(stolen.headers.getlist("www-authenticate")) == 2


def test_mistakes_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"needs an authgate\.Authenticator"):
        AuthGate(Flask(__name__))
    with pytest.raises(ConfigurationError, match="required must be"):
        AuthGate(required="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at least one scope"):
        require_scopes()
    with pytest.raises(ConfigurationError, match="must be a non-empty string"):
        require_roles("")
    bare = Flask(__name__)

    @bare.get("/")
    @require_auth
    def index() -> str:
        return "never"

    bare.testing = True
    with pytest.raises(ConfigurationError, match="need AuthGate"):
        bare.test_client().get("/")


def test_init_app_later() -> None:
    extension = AuthGate()
    app = Flask(__name__)
    verifier = JWTVerifier(KeySet.from_secret(SECRET.encode()), algorithms=["HS256"], issuer=ISSUER)
    extension.init_app(app, Authenticator([JWTProvider("idp", verifier)]))

    @app.get("/")
    @require_auth
    def index() -> str:
        return g.principal.identity  # type: ignore[no-any-return]

    assert app.test_client().get("/", headers=bearer(TOKENS.mint("z"))).text == "z"
    assert app.extensions["authgate"] is extension
