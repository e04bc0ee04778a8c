"""DPoP (RFC 9449) for resource servers: a bound token needs a fresh proof of its key, each
check on its own, under the ASGI and WSGI shells on real servers and across two workers."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    Authenticator,
    ClientAuth,
    ConfigurationError,
    IntrospectionProvider,
    InvalidRequest,
    JWTProvider,
    JWTVerifier,
    UnverifiedBinding,
)
from authgate.asgi import AuthGateMiddleware
from authgate.dpop import DPoP, jwk_thumbprint, normalized_uri
from authgate.errors import InvalidDPoPProof, UseDPoPNonce
from authgate.testing import (
    DPoPClient,
    FakeIntrospection,
    TokenFactory,
    b64url,
    serve_asgi,
    serve_wsgi,
)
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

ISSUER = "https://issuer.test"
URI = "https://api.example.com/orders"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory("ES256", issuer=ISSUER)


def authenticator(tokens: TokenFactory, **options: Any) -> Authenticator:
    verifier = JWTVerifier(tokens.keyset(), algorithms=["ES256"], issuer=ISSUER)
    return Authenticator([JWTProvider("idp", verifier)], **options)


@pytest.fixture
def auth(tokens: TokenFactory) -> Authenticator:
    return authenticator(tokens)


@pytest.fixture
def client() -> DPoPClient:
    return DPoPClient()


def ask(auth: Authenticator, headers: dict[str, str], method: str = "GET", uri: str = URI) -> Any:
    return auth.authenticate(headers, method=method, uri=uri)


def test_a_bound_token_with_a_fresh_proof_is_accepted_each_time(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    """The token is verified once and cached; the proof is checked on every request."""
    token = tokens.mint("alice", cnf=client.cnf)
    for _ in range(3):
        principal = ask(auth, client.headers(token, "GET", URI))
        assert principal.subject == "alice"
    assert auth.stats.misses == 1
    assert auth.stats.hits == 2


def test_a_bound_token_is_never_a_bearer_token(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    """Sent as Bearer, with or without a proof, before or after a DPoP request cached it: 401
    unverified_binding (RFC 9449 §7.2)."""
    token = tokens.mint("alice", cnf=client.cnf)
    proof = client.proof("GET", URI, token)
    for _ in range(2):
        with pytest.raises(UnverifiedBinding):
            ask(auth, {"authorization": f"Bearer {token}", "dpop": proof})
    assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"
    with pytest.raises(UnverifiedBinding):  # the DPoP entry is not the Bearer entry
        ask(auth, {"authorization": f"Bearer {token}"})


def test_an_unbound_token_under_the_dpop_scheme_is_refused(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice")
    with pytest.raises(InvalidDPoPProof, match="not bound to a DPoP key"):
        ask(auth, client.headers(token, "GET", URI))
    assert ask(auth, {"authorization": f"Bearer {token}"}).subject == "alice"


def test_a_token_bound_to_a_certificate_too_is_refused_under_dpop(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    """A binding authgate cannot check here (x5t#S256 beside jkt) refuses the token."""
    token = tokens.mint("alice", cnf={**client.cnf, "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9"})
    with pytest.raises(UnverifiedBinding):
        ask(auth, client.headers(token, "GET", URI))


def _tampered(proof: str) -> str:
    head, payload, signature = proof.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["htm"] = "GET"
    return f"{head}.{b64url(json.dumps(claims))}.{signature}"


def _private_jwk(client: DPoPClient) -> dict[str, Any]:
    numbers = client.key.private.private_numbers()
    size = 32
    return {**client.jwk, "d": b64url(numbers.private_value.to_bytes(size, "big"))}


def _hs256(client: DPoPClient, token: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"k" * 32)}}
    body = {"jti": "x", "htm": "GET", "htu": URI, "iat": int(time.time())}
    import hashlib
    import hmac

    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(body))}"
    mac = hmac.new(b"k" * 32, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


PROOFS: list[Any] = [
    pytest.param(lambda c, t: c.proof("POST", URI, t), "method (htm)", id="wrong-htm"),
    pytest.param(lambda c, t: c.proof("GET", URI + "/x", t), "URI (htu)", id="wrong-htu"),
    pytest.param(
        lambda c, t: c.proof("GET", "https://evil.example/orders", t), "URI (htu)", id="other-host"
    ),
    pytest.param(lambda c, t: c.proof("GET", URI, t + "x"), "another access token", id="wrong-ath"),
    pytest.param(lambda c, t: c.proof("GET", URI), "another access token", id="no-ath"),
    pytest.param(lambda c, t: DPoPClient().proof("GET", URI, t), "another key", id="other-key"),
    pytest.param(
        lambda c, t: c.proof("GET", URI, t, iat=int(time.time()) - 400), "too old", id="stale-iat"
    ),
    pytest.param(
        lambda c, t: c.proof("GET", URI, t, iat=int(time.time()) + 60), "future", id="future-iat"
    ),
    pytest.param(lambda c, t: c.proof("GET", URI, t, iat="now"), "numeric iat", id="text-iat"),
    pytest.param(lambda c, t: c.proof("GET", URI, t, jti=None), "jti", id="no-jti"),
    pytest.param(lambda c, t: c.proof("GET", URI, t, jti="j" * 300), "jti", id="long-jti"),
    pytest.param(
        lambda c, t: c.proof("GET", URI, t, headers={"jwk": _private_jwk(c)}),
        "not a usable public key",
        id="private-jwk",
    ),
    pytest.param(lambda c, t: _hs256(c, t), "algorithm is not allowed", id="symmetric-alg"),
    pytest.param(
        lambda c, t: c.proof("GET", URI, t, headers={"typ": "JWT"}), "typ", id="wrong-typ"
    ),
    pytest.param(lambda c, t: c.proof("GET", URI, t, headers={"typ": None}), "typ", id="no-typ"),
    pytest.param(lambda c, t: c.proof("GET", URI, t, headers={"jwk": None}), "no jwk", id="no-jwk"),
    pytest.param(
        lambda c, t: c.proof("GET", URI, t, headers={"alg": "ES384"}), "does not fit", id="alg-key"
    ),
    pytest.param(lambda c, t: c.proof("GET", URI, t, headers={"crit": ["x"]}), "crit", id="crit"),
    pytest.param(lambda c, t: _tampered(c.proof("POST", URI, t)), "signature", id="tampered"),
    pytest.param(lambda c, t: "not-a-jws", "compact JWS", id="garbage"),
    pytest.param(lambda c, t: "a." * 5000 + "b", "compact JWS", id="huge"),
    pytest.param(lambda c, t: "e30.e30.e30=", "compact JWS", id="padded"),
    pytest.param(lambda c, t: "e30..AA", "compact JWS", id="empty-segment"),
    pytest.param(lambda c, t: "e30.e30.AA.", "compact JWS", id="four-segments"),
    pytest.param(lambda c, t: "e30.e30\u00e9.AA", "compact JWS", id="non-ascii"),
    pytest.param(lambda c, t: "e30.e30\ud800.AA", "compact JWS", id="lone-surrogate"),
    pytest.param(lambda c, t: "W10.e30.AA", "JSON objects", id="header-array"),
]


@pytest.mark.parametrize(("make", "reason"), PROOFS)
def test_each_proof_check_refuses_on_its_own(
    make: Callable[[DPoPClient, str], str],
    reason: str,
    auth: Authenticator,
    tokens: TokenFactory,
    client: DPoPClient,
) -> None:
    """Each broken proof is 401 invalid_dpop_proof naming its fault; the same token with a
    good proof is then accepted (nothing was poisoned)."""
    token = tokens.mint("alice", cnf=client.cnf)
    with pytest.raises(InvalidDPoPProof, match=re.escape(reason)) as caught:
        ask(auth, {"authorization": f"DPoP {token}", "dpop": make(client, token)})
    assert caught.value.status == 401
    assert caught.value.error == "invalid_dpop_proof"
    assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"


def test_a_replayed_proof_is_refused(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    headers = client.headers(token, "GET", URI)
    assert ask(auth, headers).subject == "alice"
    with pytest.raises(InvalidDPoPProof, match="used before"):
        ask(auth, headers)


def test_proof_ids_are_forgotten_only_once_the_proof_is_too_old_anyway(
    tokens: TokenFactory, client: DPoPClient
) -> None:
    clock = Clock()
    client.clock = clock
    auth = authenticator(tokens, clock=clock, dpop=DPoP(max_age=60, leeway=5))
    token = tokens.mint("alice", cnf=client.cnf, exp=int(clock.now) + 3600)
    headers = client.headers(token, "GET", URI, iat=int(clock.now) + 5)  # the leeway ahead
    ask(auth, headers)
    clock.now += 69  # still remembered: its iat still passes (60 + 5 after it)
    with pytest.raises(InvalidDPoPProof, match="used before"):
        ask(auth, headers)
    clock.now += 2  # forgotten, and refused as too old instead
    with pytest.raises(InvalidDPoPProof, match="too old"):
        ask(auth, headers)


def test_a_full_replay_cache_refuses_proofs_as_old_as_the_ids_it_dropped(
    tokens: TokenFactory, client: DPoPClient
) -> None:
    """More proofs within the window than ``replay_cache_size``: the oldest ids are dropped,
    and a proof that could have been one of them is refused, never accepted twice; a fresh
    proof still passes."""
    clock = Clock()
    start = clock.now = float(int(clock.now))
    client.clock = clock
    settings = DPoP(max_age=60, leeway=5, replay_cache_size=2)
    auth = authenticator(tokens, clock=clock, dpop=settings)
    token = tokens.mint("alice", cnf=client.cnf, exp=int(start) + 3600)
    first = client.headers(token, "GET", URI)
    ask(auth, first)
    for _ in range(2):  # the second drops the first proof's id, still within its window
        clock.now += 1
        ask(auth, client.headers(token, "GET", URI))
    with pytest.raises(InvalidDPoPProof, match="older than the proof ids"):
        ask(auth, first)  # a replay the cache no longer holds
    clock.now = start + 6
    # seen by `start`, a proof could carry an iat up to the leeway ahead: still refused
    with pytest.raises(InvalidDPoPProof, match="older than the proof ids"):
        ask(auth, client.headers(token, "GET", URI, iat=int(start) + 5))
    assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"  # iat start + 6


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, InvalidDPoPProof),
        ({"dpop": ""}, InvalidDPoPProof),
        ({"dpop": ["a.b.c", "d.e.f"]}, InvalidRequest),
    ],
    ids=["missing", "empty", "two"],
)
def test_the_dpop_scheme_needs_exactly_one_proof_header(
    headers: dict[str, Any], error: type[Exception], auth: Authenticator, tokens: TokenFactory
) -> None:
    pairs: list[tuple[str, str]] = [("authorization", f"DPoP {tokens.mint('a')}")]
    for name, value in headers.items():
        pairs += [(name, v) for v in (value if isinstance(value, list) else [value])]
    with pytest.raises(error):
        auth.authenticate(pairs, method="GET", uri=URI)


def test_without_the_request_the_proof_cannot_be_checked(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    with pytest.raises(InvalidDPoPProof, match="method and URI"):
        auth.authenticate(client.headers(token, "GET", URI))


def test_dpop_off_refuses_the_dpop_scheme(tokens: TokenFactory, client: DPoPClient) -> None:
    auth = authenticator(tokens, dpop=None)
    token = tokens.mint("alice", cnf=client.cnf)
    with pytest.raises(InvalidDPoPProof, match="does not accept DPoP"):
        ask(auth, client.headers(token, "GET", URI))
    with pytest.raises(UnverifiedBinding):
        ask(auth, {"authorization": f"Bearer {token}"})


def test_the_algorithm_allowlist_is_configurable(tokens: TokenFactory) -> None:
    auth = authenticator(tokens, dpop=DPoP(algorithms=["EdDSA"]))
    for alg, accepted in (("ES256", False), ("EdDSA", True)):
        client = DPoPClient(alg)
        token = tokens.mint("alice", cnf=client.cnf)
        if accepted:
            assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"
        else:
            with pytest.raises(InvalidDPoPProof, match="algorithm is not allowed"):
                ask(auth, client.headers(token, "GET", URI))


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"])
def test_every_default_algorithm_proves(
    alg: str, auth: Authenticator, tokens: TokenFactory
) -> None:
    client = DPoPClient(alg)
    token = tokens.mint("alice", cnf=client.cnf)
    assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"


@pytest.mark.parametrize(
    ("htu", "request_uri"),
    [
        ("HTTPS://API.Example.com:443/orders", URI),
        ("https://api.example.com/orders?page=2#top", "https://api.example.com/orders"),
        ("https://api.example.com/a/%7euser/./b/../c", "https://api.example.com/a/~user/c"),
        ("http://api.example.com:80", "http://api.example.com/"),
        ("https://api.example.com/%2f", "https://api.example.com/%2F"),
    ],
    ids=["case-port", "query-fragment", "percent-dots", "empty-path", "reserved-escape"],
)
def test_htu_is_compared_after_rfc3986_normalisation(
    htu: str, request_uri: str, auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    headers = {"authorization": f"DPoP {token}", "dpop": client.proof("GET", htu, token)}
    assert ask(auth, headers, uri=request_uri).subject == "alice"


def test_normalisation_keeps_what_differs() -> None:
    assert normalized_uri("https://a.example/%2F") != normalized_uri("https://a.example//")
    assert normalized_uri("https://a.example:8443/x") == "https://a.example:8443/x"
    assert normalized_uri("ftp://a.example/x") is None
    assert normalized_uri("https://u:p@a.example/x") is None
    assert normalized_uri("https://[::1]:99999/") is None


def test_server_nonces(tokens: TokenFactory, client: DPoPClient) -> None:
    """With a nonce secret, a proof without the server's nonce is 401 use_dpop_nonce with a
    fresh nonce; the retry carrying it passes; another worker with the secret accepts it."""
    clock = Clock()
    client.clock = clock
    settings = DPoP(nonce_secret=b"n" * 32, nonce_lifetime=60)
    auth, other = (authenticator(tokens, clock=clock, dpop=settings) for _ in range(2))
    token = tokens.mint("alice", cnf=client.cnf, exp=int(clock.now) + 3600)
    with pytest.raises(UseDPoPNonce) as caught:
        ask(auth, client.headers(token, "GET", URI))
    nonce = caught.value.nonce
    assert ask(auth, client.headers(token, "GET", URI, nonce=nonce)).subject == "alice"
    assert ask(other, client.headers(token, "GET", URI, nonce=nonce)).subject == "alice"
    clock.now += 121  # two slots later: stale
    with pytest.raises(UseDPoPNonce):
        ask(auth, client.headers(token, "GET", URI, nonce=nonce))
    with pytest.raises(UseDPoPNonce):
        ask(auth, client.headers(token, "GET", URI, nonce="0." + "A" * 24))


def test_an_introspection_answer_with_cnf_jkt_binds_the_opaque_token(client: DPoPClient) -> None:
    with FakeIntrospection() as idp:
        provider = IntrospectionProvider(
            "idp",
            idp.introspection_url,
            auth=ClientAuth.basic(idp.client_id, idp.client_secret),
            audience=idp.audience,
            issuer=idp.url,
        )
        auth = Authenticator([provider])
        token = idp.issue("alice", cnf=client.cnf, token_type="DPoP")
        assert ask(auth, client.headers(token, "GET", URI)).subject == "alice"
        with pytest.raises(UnverifiedBinding):
            ask(auth, {"authorization": f"Bearer {token}"})


def test_the_thumbprint_is_rfc_7638s() -> None:
    """RFC 7638 §3.1's example key and thumbprint."""
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algorithms": ["HS256"]}, "symmetric"),
        ({"algorithms": "ES256"}, "not one string"),
        ({"algorithms": []}, "at least one"),
        ({"algorithms": ["none"]}, "unsupported"),
        ({"max_age": 0}, "DPoP.max_age"),
        ({"leeway": -1}, "DPoP.leeway must be >= 0"),
        ({"leeway": 3600}, "DPoP.leeway must be at most 300 seconds"),
        ({"base_url": "https://api.example.com/v1?x=1"}, "base_url"),
        ({"base_url": "api.example.com"}, "base_url"),
        ({"nonce_secret": b"short"}, "nonce_secret"),
        ({"trust_forwarded": "yes"}, "trust_forwarded"),
        ({"base_url": "https://api.example.com", "trust_forwarded": True}, "not both"),
    ],
)
def test_dpop_settings_mistakes_fail_at_construction(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DPoP(**settings)


def test_authenticator_refuses_anything_else_as_dpop(tokens: TokenFactory) -> None:
    with pytest.raises(ConfigurationError, match="dpop must be"):
        authenticator(tokens, dpop={"algorithms": ["ES256"]})


# -- the shells, on real servers ------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.identity})


def starlette(auth: Authenticator) -> AuthGateMiddleware:
    return AuthGateMiddleware(
        Starlette(routes=[Route("/whoami", whoami, methods=["GET", "POST"])]), auth
    )


def test_uvicorn_serves_dpop_and_answers_with_both_challenges(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    with serve_asgi(starlette(auth)) as base, httpx.Client(base_url=base) as http:
        url = base + "/whoami"
        for method in ("GET", "POST", "GET"):
            ok = http.request(method, "/whoami?x=1", headers=client.headers(token, method, url))
            assert ok.status_code == 200
            assert ok.json() == {"subject": "alice"}
        as_bearer = http.get("/whoami", headers={"authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
        assert as_bearer.json()["message"] == (
            "the token is bound to a client key and its binding cannot be verified"
        )
        bearer, dpop = as_bearer.headers.get_list("www-authenticate")
        assert bearer.startswith('Bearer realm="api", error="invalid_token"')
        assert dpop == 'DPoP realm="api", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 EdDSA"'
        replayed = client.headers(token, "GET", url)
        assert http.get("/whoami", headers=replayed).status_code == 200
        refused = http.get("/whoami", headers=replayed)
        assert refused.status_code == 401
        bearer, dpop = refused.headers.get_list("www-authenticate")
        assert bearer == 'Bearer realm="api"'
        assert 'error="invalid_dpop_proof"' in dpop
        assert 'error_description="the proof was used before (jti)"' in dpop
        wrong_host = client.headers(token, "GET", "http://elsewhere.example/whoami")
        assert http.get("/whoami", headers=wrong_host).status_code == 401


def test_behind_a_proxy_the_configured_base_url_is_the_uri(
    tokens: TokenFactory, client: DPoPClient
) -> None:
    """With base_url, the proof names the public URL; the Host and forwarding headers a client
    sends change nothing (trust_forwarded is off)."""
    auth = authenticator(tokens, dpop=DPoP(base_url="https://api.example.com/v1/"))
    token = tokens.mint("alice", cnf=client.cnf)
    with serve_asgi(starlette(auth)) as base, httpx.Client(base_url=base) as http:
        public = client.headers(token, "GET", "https://api.example.com/v1/whoami")
        assert http.get("/whoami", headers=public).status_code == 200
        internal = client.headers(token, "GET", base + "/whoami")
        assert http.get("/whoami", headers=internal).status_code == 401
        spoofed = client.headers(token, "GET", "https://attacker.example/whoami")
        spoofed.update({"x-forwarded-host": "attacker.example", "x-forwarded-proto": "https"})
        assert http.get("/whoami", headers=spoofed).status_code == 401


def test_forwarded_headers_count_only_when_trusted(
    tokens: TokenFactory, client: DPoPClient
) -> None:
    auth = authenticator(tokens, dpop=DPoP(trust_forwarded=True))
    token = tokens.mint("alice", cnf=client.cnf)
    with serve_asgi(starlette(auth)) as base, httpx.Client(base_url=base) as http:
        headers = client.headers(token, "GET", "https://api.example.com/whoami")
        headers.update({"x-forwarded-host": "api.example.com", "x-forwarded-proto": "https"})
        assert http.get("/whoami", headers=headers).status_code == 200


@pytest.fixture
def wsgi_base(auth: Authenticator) -> Iterator[str]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.dumps({"subject": environ[ENVIRON_KEY].identity}).encode()
        start_response("200 OK", [("content-type", "application/json")])
        return [body]

    with serve_wsgi(AuthGateWSGIMiddleware(app, auth)) as base:
        yield base


def test_a_wsgi_server_serves_dpop_like_bearer(
    wsgi_base: str, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    url = wsgi_base + "/whoami"
    with httpx.Client() as http:
        for _ in range(2):
            ok = http.get(url + "?q=1", headers=client.headers(token, "GET", url))
            assert ok.json() == {"subject": "alice"}
        refused = http.get(url, headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert len(refused.headers.get_list("www-authenticate")) == 2
        two = [("authorization", f"DPoP {token}"), ("dpop", "a.b.c"), ("dpop", "d.e.f")]
        assert http.get(url, headers=two).status_code == 400
        wrong = client.headers(token, "POST", url)
        assert http.get(url, headers=wrong).status_code == 401


def test_a_nonce_challenge_reaches_the_client(tokens: TokenFactory, client: DPoPClient) -> None:
    auth = authenticator(tokens, dpop=DPoP(nonce_secret=b"s" * 32))
    token = tokens.mint("alice", cnf=client.cnf)
    with serve_asgi(starlette(auth)) as base, httpx.Client(base_url=base) as http:
        url = base + "/whoami"
        first = http.get("/whoami", headers=client.headers(token, "GET", url))
        assert first.status_code == 401
        assert 'error="use_dpop_nonce"' in first.headers.get_list("www-authenticate")[1]
        nonce = first.headers["dpop-nonce"]
        retry = http.get("/whoami", headers=client.headers(token, "GET", url, nonce=nonce))
        assert retry.status_code == 200


def test_a_proof_is_never_logged(
    caplog: pytest.LogCaptureFixture, auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    token = tokens.mint("alice", cnf=client.cnf)
    proof = client.proof("POST", URI, token)
    with pytest.raises(InvalidDPoPProof):
        ask(auth, {"authorization": f"DPoP {token}", "dpop": proof})
    assert proof[:40] not in caplog.text
    assert proof.split(".")[2][:20] not in caplog.text
    assert "refused 401 invalid_dpop_proof" in caplog.text


class DownStore:
    """A shared store that is down (the Store protocol's outage answers)."""

    retry = 2.0
    started = True
    subscribed = False
    shares = False

    def __init__(self, on_unavailable: str) -> None:
        self.on_unavailable = on_unavailable
        self.locks: list[str] = []

    def subscribe(self, apply: Any, reloaded: Any, held: Any) -> None:
        return None

    def ensure_started(self) -> None:
        return None

    def try_lock(self, name: str, ttl: float) -> bool:
        raise AssertionError("proof ids are claims, not locks")

    async def try_lock_async(self, name: str, ttl: float) -> bool:
        return self.try_lock(name, ttl)

    def claim(self, name: str, ttl: float) -> bool | None:
        self.locks.append(name)
        return None

    async def claim_async(self, name: str, ttl: float) -> bool | None:
        return self.claim(name, ttl)

    def publish(self, revocation: Any) -> bool:
        return False

    async def publish_async(self, revocation: Any) -> bool:
        return False

    def get_json(self, name: str) -> Any:
        return None

    async def get_json_async(self, name: str) -> Any:
        return None

    def set_json(self, name: str, value: Any, ttl: float) -> bool:
        return False

    async def set_json_async(self, name: str, value: Any, ttl: float) -> bool:
        return False

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("mode", ["refuse", "serve"])
def test_with_the_store_down_replays_are_checked_per_process_or_refused(
    mode: str, tokens: TokenFactory, client: DPoPClient
) -> None:
    """refuse: 503 (a replay elsewhere cannot be ruled out); serve: this process's memory."""
    from authgate import ProviderUnavailable

    store = DownStore(mode)
    auth = authenticator(tokens, store=store)
    token = tokens.mint("alice", cnf=client.cnf)
    if mode == "refuse":
        with pytest.raises(ProviderUnavailable) as caught:
            ask(auth, client.headers(token, "GET", URI))
        assert "DPoP proof replays cannot be checked" in caught.value.detail
    else:
        headers = client.headers(token, "GET", URI)
        assert ask(auth, headers).subject == "alice"
        with pytest.raises(InvalidDPoPProof, match="used before"):
            ask(auth, headers)
    assert len(store.locks) == 1  # asked once; the replay was this process's to refuse
    assert store.locks[0].startswith("dpop:")


def test_a_websocket_handshake_proves_like_a_get(
    auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    """The handshake is a GET to the http(s) URI of the socket (ws maps to http)."""
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"subject": websocket.user.identity})
        await websocket.close()

    app = AuthGateMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]), auth)
    token = tokens.mint("alice", cnf=client.cnf)
    with TestClient(app) as test:
        headers = client.headers(token, "GET", "http://testserver/ws")
        with test.websocket_connect("/ws", headers=headers) as socket:
            assert socket.receive_json() == {"subject": "alice"}


def test_request_uris_without_a_host_header_use_the_server_address() -> None:
    from authgate.dpop import request_uri_asgi, request_uri_wsgi

    plain = DPoP()
    scope = {"scheme": "https", "server": ("10.0.0.1", 8443), "root_path": "/v1", "path": "/a"}
    assert request_uri_asgi(scope, plain) == "https://10.0.0.1:8443/v1/a"
    assert request_uri_asgi({"path": "/a"}, plain) == "http://localhost/a"
    trusting = DPoP(trust_forwarded=True)
    headers = [(b"host", b"internal:8000"), (b"x-forwarded-host", b"api.example.com"),
               (b"x-forwarded-proto", b"https")]  # fmt: skip
    behind = {"scheme": "http", "raw_path": b"/a?q", "headers": headers}
    assert request_uri_asgi(behind, plain) == "http://internal:8000/a"
    assert request_uri_asgi(behind, trusting) == "https://api.example.com/a"
    assert request_uri_asgi({**behind, "headers": headers[:1]}, trusting) == (
        "http://internal:8000/a"
    )
    assert request_uri_asgi({**behind, "headers": [], "server": ("10.0.0.1", 80)}, trusting) == (
        "http://10.0.0.1:80/a"
    )
    raw = {"raw_path": b"/caf\xc3\xa9?q=1", "headers": [(b"host", b"a.example")]}
    assert normalized_uri(request_uri_asgi(raw, plain)) == "http://a.example/caf%C3%A9"
    twice = [(b"host", b"first.example"), (b"host", b"last.example")]
    assert request_uri_asgi({"raw_path": b"/a", "headers": twice}, plain) == (
        "http://last.example/a"
    )
    environ = {"SERVER_NAME": "10.0.0.2", "SERVER_PORT": "8080", "PATH_INFO": "/caf\xc3\xa9"}
    assert request_uri_wsgi(environ, plain) == "http://10.0.0.2:8080/caf\xe9"
    mounted = {**environ, "SCRIPT_NAME": "/\xc3\xa9t\xc3\xa9"}
    assert request_uri_wsgi(mounted, plain) == "http://10.0.0.2:8080/\xe9t\xe9/caf\xe9"
    forwarded = {"HTTP_HOST": "internal:8000", "HTTP_X_FORWARDED_HOST": "api.example.com",
                 "HTTP_X_FORWARDED_PROTO": "https", "PATH_INFO": "/a"}  # fmt: skip
    assert request_uri_wsgi(forwarded, plain) == "http://internal:8000/a"
    assert request_uri_wsgi(forwarded, DPoP(trust_forwarded=True)) == "https://api.example.com/a"
    assert request_uri_wsgi(forwarded, DPoP(base_url="https://x.example/p")) == (
        "https://x.example/p/a"
    )
    # behind a proxy too, the path is the client's UTF-8, not WSGI's latin-1 reading of it
    assert request_uri_wsgi(environ, DPoP(base_url="https://x.example/p")) == (
        "https://x.example/p/caf\xe9"
    )
    assert normalized_uri("https://a.example/caf\xe9") == normalized_uri(
        "https://a.example/caf%C3%A9"
    )


@pytest.mark.parametrize("how", ["token", "jti", "subject"])
def test_a_sign_out_reaches_a_cached_bound_token(
    how: str, auth: Authenticator, tokens: TokenFactory, client: DPoPClient
) -> None:
    """Served from the cache (the shell's DPoP lane) until it is revoked, then refused."""
    from starlette.testclient import TestClient

    token = tokens.mint("alice", cnf=client.cnf, jti="j-1")
    url = "http://testserver/whoami"
    with TestClient(starlette(auth)) as test:
        for _ in range(2):
            assert test.get("/whoami", headers=client.headers(token, "GET", url)).status_code == 200
        hits = auth.stats.hits
        if how == "token":
            auth.revoke(token)
        elif how == "jti":
            auth.revoke(jti="j-1")
        else:
            auth.revoke(subject="alice")
        refused = test.get("/whoami", headers=client.headers(token, "GET", url))
    assert refused.status_code == 401
    assert refused.json()["message"] == "the token has been revoked"
    assert hits == 1  # the second request, from the cache
