"""API keys: digests only, constant-shape lookup, routing from x-api-key and prefixed Bearer."""

from __future__ import annotations

import hmac
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    ConfigurationError,
    InvalidToken,
    JWTProvider,
    JWTVerifier,
    TokenCookie,
    hash_api_key,
)
from authgate._shell import add_vary, varies_on
from authgate.asgi import AuthGateMiddleware
from authgate.extract import Credential
from authgate.testing import TokenFactory, serve_asgi, serve_wsgi
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app

LIVE = "sk_live_4f9c2b7e1d8a6c3b5e0f9a2d"
TEST = "sk_test_0a1b2c3d4e5f6a7b8c9d0e1f"


@pytest.fixture
def ring() -> APIKeyRing:
    """Two keys with the sk_ prefixes."""
    keys = APIKeyRing(prefixes=("sk_live_", "sk_test_"))
    keys.add(
        LIVE,
        subject="svc-billing",
        name="billing prod",
        scopes=["invoices:read"],
        environment="live",
    )
    keys.add(TEST, subject="svc-billing", name="billing ci", scopes=[], environment="test")
    return keys


def test_only_digests_are_kept(ring: APIKeyRing) -> None:
    """The ring holds SHA-256 digests; no raw key appears in its state or reprs."""
    state = repr(ring) + repr(list(ring._by_digest.items()))
    assert LIVE not in state
    assert TEST not in state
    assert hash_api_key(LIVE) in ring._by_digest


def test_lookup_hit_and_miss(ring: APIKeyRing) -> None:
    """A known key finds its entry; an unknown one, or a near miss, finds nothing."""
    entry = ring.lookup(LIVE)
    assert entry is not None
    assert (entry.subject, entry.environment, entry.scopes) == (
        "svc-billing",
        "live",
        frozenset({"invoices:read"}),
    )
    assert ring.lookup(LIVE[:-1] + "e") is None
    assert ring.lookup("") is None


def test_hit_and_miss_have_the_same_shape(
    ring: APIKeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths hash once and call compare_digest exactly once."""
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(len(a) + len(b))
        return real(a, b)

    monkeypatch.setattr("authgate.apikeys.hmac.compare_digest", counting)
    ring.lookup(LIVE)
    ring.lookup("sk_live_unknown_key_00000000")
    assert calls == [64, 64]


def test_remove(ring: APIKeyRing) -> None:
    """A removed key no longer authenticates."""
    assert ring.remove(TEST)
    assert ring.lookup(TEST) is None
    assert not ring.remove(TEST)


@pytest.mark.parametrize("raw", ["short", 42], ids=["short", "not-a-string"])
def test_bad_keys_are_refused_at_configuration(raw: Any, ring: APIKeyRing) -> None:
    """Keys shorter than 16 characters (or not text) are refused when added."""
    with pytest.raises(ConfigurationError):
        ring.add(raw, subject="x")


@pytest.fixture
def auth(ring: APIKeyRing) -> Authenticator:
    """An Authenticator with only the key provider."""
    return Authenticator([APIKeyProvider("keys", ring)])


def test_x_api_key_and_prefixed_bearer(auth: Authenticator) -> None:
    """A key arrives as x-api-key or as a Bearer value with a known prefix."""
    for headers in ({"x-api-key": LIVE}, {"authorization": f"Bearer {LIVE}"}):
        principal = auth.authenticate(headers)
        assert principal is not None
        assert (principal.subject, principal.credential, principal.provider) == (
            "svc-billing",
            "api_key",
            "keys",
        )
        assert principal.claims["environment"] == "live"
        assert principal.scopes == {"invoices:read", "authenticated"}


def test_unknown_key_is_401_and_keys_are_never_cached(auth: Authenticator) -> None:
    """An unknown key is invalid_token; known keys do not enter the token cache."""
    with pytest.raises(InvalidToken, match="not recognised"):
        auth.authenticate({"x-api-key": "sk_live_not_a_real_key_123"})
    auth.authenticate({"x-api-key": LIVE})
    assert auth.cache is not None
    assert len(auth.cache) == 0


def test_unprefixed_bearer_is_not_taken_for_a_key() -> None:
    """Without prefixes, a ring takes keys from x-api-key only, never from Bearer."""
    ring = APIKeyRing()
    ring.add("mori-4f9c2b7e1d8a6c3b", subject="42")
    auth = Authenticator([APIKeyProvider("mori", ring)])
    assert auth.authenticate({"x-api-key": "mori-4f9c2b7e1d8a6c3b"}).subject == "42"  # type: ignore[union-attr]
    with pytest.raises(InvalidToken, match="not a JWT"):
        auth.authenticate({"authorization": "Bearer mori-4f9c2b7e1d8a6c3b"})


def test_api_keys_through_the_asgi_shell(auth: Authenticator) -> None:
    """200 with the key's principal; 401 invalid_token for an unknown key."""
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        ok = client.get("/whoami", headers={"x-api-key": LIVE})
        assert ok.json()["subject"] == "svc-billing"
        refused = client.get("/whoami", headers={"x-api-key": "sk_live_nope_nope_nope_nope"})
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "sk_live_nope" not in refused.text


def test_overlapping_key_prefixes_are_refused_at_construction(ring: APIKeyRing) -> None:
    """Two rings whose prefixes overlap (sk_ and sk_live_) would send one ring's keys to the
    other: refused, naming both; so is a second ring without any prefix."""
    wide = APIKeyRing(prefixes=("sk_",))
    with pytest.raises(ConfigurationError, match="overlap") as caught:
        Authenticator([APIKeyProvider("keys", ring), APIKeyProvider("wide", wide)])
    assert "'sk_'" in caught.value.message
    assert "'sk_live_'" in caught.value.message
    with pytest.raises(ConfigurationError, match="key prefixes"):
        Authenticator([APIKeyProvider("keys", ring), APIKeyProvider("bare", APIKeyRing())])


def test_two_rings_with_distinct_prefixes_each_get_their_keys(ring: APIKeyRing) -> None:
    """With two rings, an x-api-key value reaches the ring whose prefix it carries (the second
    ring's keys were always refused when the first took every header key)."""
    partners = APIKeyRing(prefixes=("pk_live_",))
    partner_key = "pk_live_9a8b7c6d5e4f3a2b1c0d9e8f"
    partners.add(partner_key, subject="partner-7", name="partner", scopes=[], environment="live")
    auth = Authenticator([APIKeyProvider("keys", ring), APIKeyProvider("partners", partners)])
    first = auth.authenticate({"x-api-key": LIVE})
    second = auth.authenticate({"x-api-key": partner_key})
    assert first is not None
    assert second is not None
    assert (first.provider, second.provider) == ("keys", "partners")
    with pytest.raises(InvalidToken, match="not recognised"):
        auth.authenticate({"x-api-key": "zz_live_0000000000000000000000"})


def _vary_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    own = [] if environ["PATH_INFO"] == "/plain" else [("vary", "Accept-Encoding")]
    start_response("200 OK", [("content-type", "text/plain"), *own])
    return [environ[ENVIRON_KEY].identity.encode()]


async def _vary_asgi(scope: Any, receive: Any, send: Any) -> None:
    own = [] if scope["path"] == "/plain" else [(b"vary", b"Accept-Encoding")]
    headers = [(b"content-type", b"text/plain"), *own]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": scope["user"].identity.encode()})


@pytest.mark.parametrize("shell", ["asgi", "wsgi"])
def test_a_response_to_a_key_or_cookie_varies_on_it(shell: str, ring: APIKeyRing) -> None:
    """HTTP caches keep Authorization's responses apart by themselves (RFC 9111 §3.5), not
    x-api-key's or a cookie's: a cache in front would serve one key's page to whoever asks
    next. Those responses vary on the header (beside the app's own Vary); a Bearer one, and
    the cached Bearer hit, are left as the app made them. uvicorn and a WSGI server."""
    tokens = TokenFactory("ES256", issuer="https://issuer.test")
    verifier = JWTVerifier(tokens.keyset(), algorithms=["ES256"], issuer="https://issuer.test")
    auth = Authenticator(
        [JWTProvider("idp", verifier), APIKeyProvider("keys", ring)], cookie=TokenCookie("t")
    )
    token = tokens.mint("alice")
    served = (
        serve_asgi(AuthGateMiddleware(_vary_asgi, auth))
        if shell == "asgi"
        else serve_wsgi(AuthGateWSGIMiddleware(_vary_app, auth))
    )
    with served as base, httpx.Client(base_url=base) as http:
        key = http.get("/", headers={"x-api-key": LIVE})
        plain = http.get("/plain", headers={"x-api-key": LIVE})  # the app sets no Vary
        cookie = http.get("/", headers={"cookie": f"t={token}"})
        bearer = [http.get("/", headers={"authorization": f"Bearer {token}"}) for _ in range(2)]
    assert (key.text, cookie.text, bearer[1].text) == ("svc-billing", "alice", "alice")
    assert key.headers.get_list("vary") == ["Accept-Encoding, x-api-key"]  # one field line
    assert plain.headers.get_list("vary") == ["x-api-key"]
    assert cookie.headers.get_list("vary") == ["Accept-Encoding, cookie"]
    assert [b.headers.get_list("vary") for b in bearer] == [["Accept-Encoding"]] * 2


def test_what_a_response_varies_on() -> None:
    assert add_vary("", "x-api-key") == "x-api-key"
    assert add_vary("Accept-Encoding", "x-api-key") == "Accept-Encoding, x-api-key"
    assert add_vary("accept-encoding, X-API-Key", "x-api-key") == "accept-encoding, X-API-Key"
    assert add_vary("*", "x-api-key") == "*"
    assert varies_on(None) is None
    assert varies_on(Credential("bearer", "a.b.c")) is None
    assert varies_on(Credential("api_key", LIVE)) == "x-api-key"
    assert varies_on(Credential("bearer", "a.b.c", from_cookie=True)) == "cookie"
    own = Credential("bearer", "a.b.c", header="x-amzn-oidc-data")
    assert varies_on(own) == "x-amzn-oidc-data"
