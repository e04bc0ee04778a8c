"""The WSGI shell with real Flask and Django apps, under wsgiref.validate and a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
from flask import Flask, request
from werkzeug.test import Client

from authgate import Authenticator, JWTProvider, JWTVerifier
from authgate.testing import TokenFactory, serve_wsgi
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from . import django_project
from .apps import DPOP, CachedKeys

ISSUER = "https://issuer.test"


@pytest.fixture
def auth(tokens: TokenFactory) -> Authenticator:
    """One JWT provider over a static key set."""
    verifier = JWTVerifier(tokens.keyset(), algorithms=["RS256"], issuer=ISSUER)
    return Authenticator([JWTProvider("test", verifier)])


def json_of(response: Any) -> dict[str, Any]:
    """The JSON object of a Flask test response."""
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def flask_app(auth: Authenticator, **options: Any) -> Flask:
    """A Flask app whose WSGI app is wrapped by authgate."""
    app = Flask(__name__)

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        principal = request.environ[ENVIRON_KEY]
        if not principal:
            return {"anonymous": True}
        return {"subject": principal.subject, "verified_by": principal.verified_by}

    @app.get("/health")
    def health() -> str:
        return "ok"

    app.wsgi_app = AuthGateWSGIMiddleware(app.wsgi_app, auth, **options)  # type: ignore[method-assign]
    return app


def bearer(token: str) -> dict[str, str]:
    """Headers carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


def test_flask_valid_token_and_cache(auth: Authenticator, tokens: TokenFactory) -> None:
    """The principal reaches the Flask view; the second request is a cache hit."""
    client = flask_app(auth).test_client()
    token = tokens.mint("flask-user")
    assert client.get("/whoami", headers=bearer(token)).json == {
        "subject": "flask-user",
        "verified_by": "local",
    }
    assert client.get("/whoami", headers=bearer(token)).json == {
        "subject": "flask-user",
        "verified_by": "local",
    }
    assert auth.stats.hits == 1


REJECTIONS: list[Any] = [
    pytest.param(lambda t: {}, 401, None, id="no-credential"),
    pytest.param(lambda t: bearer(t.mint(exp=1)), 401, "invalid_token", id="expired"),
    pytest.param(lambda t: {"authorization": "Bearer "}, 400, "invalid_request", id="empty-bearer"),
    pytest.param(
        lambda t: {"authorization": "Bearer x", "x-api-key": "k"}, 400, "invalid_request", id="both"
    ),
]


@pytest.mark.parametrize(("headers", "status", "error"), REJECTIONS)
def test_flask_rejections(
    headers: Any, status: int, error: str | None, auth: Authenticator, tokens: TokenFactory
) -> None:
    """Rejections carry status, RFC 6750 challenge and the JSON body shape."""
    response = flask_app(auth).test_client().get("/whoami", headers=headers(tokens))
    assert response.status_code == status
    assert response.json is not None
    assert response.json["statusCode"] == status
    assert set(response.json) == {"statusCode", "error", "message"}
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api"')
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)


def test_flask_optional_mode_and_excluded_paths(auth: Authenticator, tokens: TokenFactory) -> None:
    """required=False admits anonymous requests; exclude_paths skips authentication."""
    client = flask_app(auth, required=False, exclude_paths=("/health",)).test_client()
    assert client.get("/whoami").json == {"anonymous": True}
    assert client.get("/whoami", headers=bearer(tokens.mint(exp=1))).status_code == 401
    strict = flask_app(auth, exclude_paths=("/health",)).test_client()
    assert strict.get("/health").text == "ok"


def test_django_project(auth: Authenticator, tokens: TokenFactory) -> None:
    """A minimal Django project's WSGI application, wrapped, sees the principal in META."""
    client = Client(AuthGateWSGIMiddleware(django_project.application(), auth))
    ok = client.get("/whoami", headers=bearer(tokens.mint("dj")))
    assert ok.status_code == 200
    assert ok.json == {"subject": "dj", "provider": "test"}
    assert client.get("/whoami").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [bearer("placeholder"), {}, {"authorization": "Bearer "}],
    ids=["valid", "none", "empty"],
)
def test_wsgi_shell_passes_wsgiref_validate(
    headers: dict[str, str], auth: Authenticator, tokens: TokenFactory
) -> None:
    """Accepted and rejected requests both satisfy the WSGI spec checker."""
    if headers.get("authorization") == "Bearer placeholder":
        headers = bearer(tokens.mint())

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    client = Client(validator(AuthGateWSGIMiddleware(validator(app), auth)))
    response = client.get("/", headers=headers, buffered=True)
    assert response.status_code in (200, 400, 401)
    if response.status_code == 200:
        assert response.data == b"user-1"


@pytest.fixture
def wsgi_server(auth: Authenticator) -> Iterator[str]:
    """A real wsgiref server on 127.0.0.1 serving the wrapped Flask app."""
    with serve_wsgi(flask_app(auth)) as base:
        yield base


def test_real_wsgi_server_end_to_end(wsgi_server: str, tokens: TokenFactory) -> None:
    """Over a real socket: accepted, rejected with the challenge, and concurrent requests."""
    token = tokens.mint("wire")
    with httpx.Client(base_url=wsgi_server) as client:
        assert client.get("/whoami", headers=bearer(token)).json()["subject"] == "wire"
        refused = client.get("/whoami")
        assert refused.status_code == 401
        assert json.loads(refused.text)["statusCode"] == 401
        assert refused.headers.get_list("www-authenticate") == ['Bearer realm="api"', DPOP]


def test_wsgi_hit_path_never_bypasses_the_full_path(
    wsgi_server: str, auth: Authenticator, tokens: TokenFactory
) -> None:
    """A cached token is served from the cache, yet sent twice (the server joins the values
    with a comma), beside an x-api-key, or with another scheme spelling, the full path answers."""
    token = tokens.mint("hot")
    with httpx.Client(base_url=wsgi_server) as client:
        for _ in range(2):
            assert client.get("/whoami", headers=bearer(token)).json()["subject"] == "hot"
        assert auth.stats.hits == 1
        twice = client.get("/whoami", headers=[("authorization", f"Bearer {token}")] * 2)
        assert twice.status_code == 400
        assert 'error="invalid_request"' in twice.headers["www-authenticate"]
        both = client.get("/whoami", headers={**bearer(token), "x-api-key": "k"})
        assert both.status_code == 400
        assert "not both" in both.json()["message"]
        lower = client.get("/whoami", headers={"authorization": f"bearer {token}"})
        assert lower.json() == {"subject": "hot", "verified_by": "local"}
        assert auth.stats.hits == 2  # another spelling: the full path, which finds the cache
        spaced = client.get("/whoami", headers={"authorization": f"Bearer  {token}"})
        assert spaced.json()["subject"] == "hot"


def test_wsgi_hit_path_honours_exp_and_exclusions(tokens: TokenFactory) -> None:
    """A cached entry stops serving at its deadline; an excluded path never gets a principal."""
    now = [1_900_000_000.0]
    timed = TokenFactory(key=tokens.key, issuer=ISSUER, clock=lambda: now[0])
    verifier = JWTVerifier(
        tokens.keyset(), algorithms=["RS256"], issuer=ISSUER, clock=lambda: now[0]
    )
    auth = Authenticator([JWTProvider("test", verifier)], clock=lambda: now[0])
    client = flask_app(auth, exclude_paths=("/health",)).test_client()
    token = timed.mint("t", exp=int(now[0]) + 60)
    for _ in range(2):
        assert json_of(client.get("/whoami", headers=bearer(token)))["subject"] == "t"
    assert auth.stats.hits == 1
    assert client.get("/health", headers=bearer(token)).text == "ok"
    now[0] += 60
    assert json_of(client.get("/whoami", headers=bearer(token)))["subject"] == "t"
    assert (auth.stats.hits, auth.stats.misses) == (1, 2)
    now[0] += 31
    assert client.get("/whoami", headers=bearer(token)).status_code == 401


def test_wsgi_hit_path_looks_up_bearer_values_only() -> None:
    """An API key (never cached) is no credential as ``Authorization: x-api-key:…``."""
    client = flask_app(Authenticator([CachedKeys()])).test_client()
    for _ in range(2):
        ok = client.get("/whoami", headers={"x-api-key": CachedKeys.KEY})
    assert ok.json == {"subject": "42", "verified_by": "local"}  # API keys are never cached
    disguised = client.get("/whoami", headers={"authorization": f"x-api-key:{CachedKeys.KEY}"})
    assert disguised.status_code == 401


def test_wsgi_revocation_reaches_the_hit_path_at_once(
    auth: Authenticator, tokens: TokenFactory
) -> None:
    """A token served from the WSGI hit path is refused on the next request once revoked."""
    client = flask_app(auth).test_client()
    token = tokens.mint("leaving")
    client.get("/whoami", headers=bearer(token))
    client.get("/whoami", headers=bearer(token))
    assert auth.stats.hits == 1
    auth.revoke(token)
    refused = client.get("/whoami", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in json_of(refused)["message"]


def test_repeated_api_keys_behind_a_real_wsgi_server_are_a_400() -> None:
    """wsgiref joins repeated x-api-key headers with a comma: that is two keys, a 400, as over
    ASGI (it was a 401 'not recognised')."""
    import http.client
    from urllib.parse import urlsplit

    from authgate import APIKeyProvider, APIKeyRing

    ring = APIKeyRing()
    ring.add("ak_0123456789abcdef", subject="svc")
    auth = Authenticator([APIKeyProvider("keys", ring)])

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    answers = []
    with serve_wsgi(AuthGateWSGIMiddleware(app, auth)) as base:
        port = urlsplit(base).port
        for keys in (["ak_0123456789abcdef"], ["ak_0123456789abcdef", "ak_0123456789abcdef"]):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.putrequest("GET", "/whoami")
            for key in keys:
                connection.putheader("x-api-key", key)
            connection.endheaders()
            response = connection.getresponse()
            answers.append((response.status, response.read()))
            connection.close()
    assert answers[0] == (200, b"svc")
    assert answers[1][0] == 400
    assert b"send one x-api-key header, not several" in answers[1][1]


@pytest.mark.parametrize("spelling", ["Bearer\t{t}", "Bearer,{t}", "DPoP\t{t}"])
def test_wsgi_optional_mode_refuses_a_malformed_bearer(
    spelling: str, auth: Authenticator, tokens: TokenFactory
) -> None:
    """The WSGI shell with required=False answers a malformed Bearer or a DPoP header 400."""
    client = flask_app(auth, required=False).test_client()
    answer = client.get("/whoami", headers={"authorization": spelling.format(t=tokens.mint())})
    assert answer.status_code == 400
    assert 'error="invalid_request"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    "cnf",
    [{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"x5t#S256": "bwcK0esc3ACC3DB2Y5"}],
    ids=["dpop", "mtls"],
)
def test_a_key_bound_token_sent_as_bearer_is_refused(
    cnf: dict[str, str], wsgi_server: str, tokens: TokenFactory
) -> None:
    """RFC 9449 §7.2 / RFC 8705 §3: a token bound to a client key (cnf) sent as a plain Bearer
    token is a 401 over a real WSGI server, every time, never served from the cache."""
    token = tokens.mint("bound", cnf=cnf)
    with httpx.Client(base_url=wsgi_server) as client:
        for _ in range(2):
            answer = client.get("/whoami", headers=bearer(token))
            assert answer.status_code == 401
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]
            assert "bound to a client" in answer.json()["message"]
