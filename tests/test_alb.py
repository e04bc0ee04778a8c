"""AWS ALB's user-claims tokens (``x-amzn-oidc-data``) against a local fake of its key
endpoint, shaped as AWS documents both: padded segments signed as sent, ES256, UUID kids,
``signer`` and ``client`` in the header, one PEM public key per kid (S3 answers 403 for one it
does not hold)."""

from __future__ import annotations

import asyncio
import base64
import json
import string
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.testclient import TestClient
from werkzeug.test import Client

from authgate import (
    AlgorithmNotAllowed,
    Authenticator,
    BadAudience,
    BadIssuer,
    BadSignature,
    ConfigurationError,
    ExpiredToken,
    InvalidRequest,
    JWTVerifier,
    KeyNotFound,
    KeySourceUnavailable,
    MalformedToken,
    Principal,
    RevokedToken,
    Upstream,
)
from authgate.asgi import AuthGateMiddleware
from authgate.events import KeyFetch
from authgate.keysources import alb_keys_url
from authgate.providers import JWTProvider, aws_alb, cognito
from authgate.testing import (
    Answer,
    FakeALB,
    FakeCognito,
    SigningKey,
    TokenFactory,
    serve_asgi,
)
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

from .apps import starlette_app

HEADER = "x-amzn-oidc-data"


@pytest.fixture
def alb() -> Iterator[FakeALB]:
    with FakeALB() as server:
        yield server


def provider_for(alb: FakeALB, **options: Any) -> JWTProvider:
    settings: dict[str, Any] = {"client_id": alb.client_id, "issuer": alb.issuer}
    settings.update(options)
    return aws_alb(alb.arn, keys_url=alb.url, **settings)


def who(auth: Authenticator, headers: dict[str, str]) -> Principal:
    principal = auth.authenticate(headers)
    assert principal is not None
    return principal


def fetches(alb: FakeALB) -> int:
    return sum(alb.requests.values())


def test_alb_tokens_verify_padded_as_alb_sends_them(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    token = alb.token(email="bob@example.com")
    assert "=" in token.split(".")[0] + token.split(".")[2]  # the fake pads as ALB does
    principal = who(auth, {HEADER: token})
    assert principal.subject == "8f2c5a8e-2f6b-4c1a-9d8e-7b6a5c4d3e2f"
    assert principal.email == "bob@example.com"
    assert principal.provider == "aws-alb"
    assert principal.issuer == alb.issuer
    # the RFC 7515 form of the same claims verifies too; one key fetch for both
    assert who(auth, {HEADER: alb.token(padded=False)}).subject == principal.subject
    assert alb.requests == {f"/{alb.key.kid}": 1}


def test_the_signature_covers_the_padding_as_received(alb: FakeALB) -> None:
    """Stripping ALB's padding changes the signed text: the token no longer verifies."""
    auth = Authenticator([provider_for(alb)])
    h, p, s = alb.token().split(".")
    assert h.endswith("=") or p.endswith("=")
    with pytest.raises(BadSignature):
        auth.authenticate({HEADER: f"{h.rstrip('=')}.{p.rstrip('=')}.{s}"})


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h, p, s: f"{h}=.{p}.{s}",  # more padding than the length needs
        lambda h, p, s: f"{h[:-1]}=={h[-1]}.{p}.{s}",  # padding inside a segment
        lambda h, p, s: f"{h}.{p}.{s}.{s}",  # four segments
    ],
)
def test_misplaced_padding_is_malformed(alb: FakeALB, mangle: Any) -> None:
    auth = Authenticator([provider_for(alb)])
    h, p, s = alb.token().split(".")
    with pytest.raises(MalformedToken):
        auth.authenticate({HEADER: mangle(h, p, s)})


def test_alb_tokens_are_read_from_albs_header_only(alb: FakeALB) -> None:
    """Under Authorization the padded form is not RFC 6750 syntax (400), and the unpadded one
    is routed by issuer like any JWT: never to the ALB provider, even when another provider
    has the same issuer."""
    with FakeCognito() as pool:
        pool_provider = cognito(pool.region, pool.user_pool_id, pool.client_id, endpoint=pool.url)
        alb.issuer = pool_provider.issuer or ""
        auth = Authenticator([provider_for(alb), pool_provider])
        with pytest.raises(InvalidRequest):
            auth.authenticate({"authorization": "Bearer " + alb.token()})
        with pytest.raises(AlgorithmNotAllowed):  # the pool's rules (RS256), not ALB's
            auth.authenticate({"authorization": "Bearer " + alb.token(padded=False)})
        assert fetches(alb) == 0
        assert who(auth, {HEADER: alb.token()}).provider == "aws-alb"
        # and the pool's own tokens still route to the pool
        assert who(auth, {"authorization": "Bearer " + pool.access_token()}).provider == ("cognito")


def test_only_albs_token_is_refused(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    with pytest.raises(BadIssuer):
        auth.authenticate({"authorization": "Bearer " + alb.token(padded=False)})


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([(HEADER, "a.b.c"), (HEADER, "a.b.c")], "send one x-amzn-oidc-data header"),
        ([(HEADER, "  ")], "header is empty"),
        ([(HEADER, "a.b.c d")], "must hold one token"),
        ([(HEADER, "a.b.c"), ("authorization", "Bearer a.b.c")], "or another credential"),
        ([(HEADER, "a.b.c"), ("x-api-key", "k")], "or another credential"),
    ],
)
def test_ambiguous_or_broken_alb_headers_are_the_clients_error(
    alb: FakeALB, headers: list[tuple[str, str]], message: str
) -> None:
    auth = Authenticator([provider_for(alb)])
    with pytest.raises(InvalidRequest, match=message):
        auth.authenticate(headers)


def test_signer_and_client_are_checked_before_any_key_fetch(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    other_alb = alb.arn.replace("50dc6c495c0c9188", "60dc6c495c0c9188")
    with pytest.raises(BadIssuer, match="another load balancer"):
        auth.authenticate({HEADER: alb.token(header={"signer": other_alb})})
    for hostile in (None, ["x"], {"a": 1}, 5):
        with pytest.raises(BadIssuer):
            auth.authenticate({HEADER: alb.token(header={"signer": hostile})})
        with pytest.raises(BadAudience):
            auth.authenticate({HEADER: alb.token(header={"client": hostile})})
    with pytest.raises(BadAudience, match="another client"):
        auth.authenticate({HEADER: alb.token(header={"client": "another-client"})})
    assert fetches(alb) == 0
    # client_id=None (explicitly) accepts any client of this load balancer
    anyone = Authenticator([provider_for(alb, client_id=None)])
    assert anyone.authenticate({HEADER: alb.token(header={"client": "another-client"})})


def test_issuer_expiry_and_algorithm(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    with pytest.raises(BadIssuer):
        auth.authenticate({HEADER: alb.token(iss="https://idp.example.com")})
    with pytest.raises(ExpiredToken):
        auth.authenticate({HEADER: alb.token(lifetime=-300)})
    with pytest.raises(AlgorithmNotAllowed):
        auth.authenticate({HEADER: alb.token(header={"alg": "HS256"})})
    anyone = Authenticator([provider_for(alb, issuer=None)])
    assert anyone.authenticate({HEADER: alb.token(iss="https://idp.example.com")})
    # the verifier judges expiry by the Upstream's clock, as the key source does
    ahead = Upstream(clock=lambda: time.time() + 7200)
    with pytest.raises(ExpiredToken):
        Authenticator([provider_for(alb, upstream=ahead)]).authenticate({HEADER: alb.token()})


def test_forged_kids_cannot_make_the_source_fetch_without_bound(alb: FakeALB) -> None:
    """A kid that is not a UUID is never fetched; a UUID ALB does not hold is a 401 (not an
    outage), fetched once per cooldown; at most 8 distinct kids are fetched per cooldown."""
    auth = Authenticator([provider_for(alb)])
    with pytest.raises(KeyNotFound):
        auth.authenticate({HEADER: alb.token(header={"kid": "../../etc/passwd"})})
    assert fetches(alb) == 0
    forged = str(uuid.uuid4())
    for _ in range(3):
        with pytest.raises(KeyNotFound):
            auth.authenticate({HEADER: alb.token(header={"kid": forged})})
    assert alb.requests == {f"/{forged}": 1}
    for _ in range(20):
        with pytest.raises(KeyNotFound):
            auth.authenticate({HEADER: alb.token(header={"kid": str(uuid.uuid4())})})
    assert fetches(alb) == 8


def test_rotation_fetches_the_new_kid_and_keeps_the_old(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)], cache=None)
    old = alb.token()
    assert auth.authenticate({HEADER: old})
    alb.rotate()
    assert auth.authenticate({HEADER: alb.token()})
    assert auth.authenticate({HEADER: old})
    assert fetches(alb) == 2


def test_an_unreachable_key_endpoint_is_an_outage_and_held_keys_keep_working(
    alb: FakeALB,
) -> None:
    auth = Authenticator([provider_for(alb)], cache=None)
    assert auth.authenticate({HEADER: alb.token()})
    alb.rotate()
    alb.fault = "down"
    with pytest.raises(KeySourceUnavailable):
        auth.authenticate({HEADER: alb.token()})
    alb.rotate()
    alb.fault = "error"
    with pytest.raises(KeySourceUnavailable):
        auth.authenticate({HEADER: alb.token()})
    assert auth.authenticate({HEADER: alb_token_with(alb, 0)})  # the key held from before


def alb_token_with(alb: FakeALB, index: int) -> str:
    """A token signed with a retired key (the first one, still held by the source)."""
    current = alb.key
    alb.key = alb.retired[index]
    try:
        return alb.token()
    finally:
        alb.key = current


@pytest.mark.parametrize(
    "body",
    [
        b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        SigningKey("RS256")
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        b"<html>maintenance</html>",
    ],
)
def test_a_key_that_is_not_p256_is_refused_as_an_outage(
    alb: FakeALB, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALB keys are P-256 PEM public keys; anything else at the endpoint is its failure."""
    auth = Authenticator([provider_for(alb)])
    monkeypatch.setattr(alb, "answer", lambda *args: Answer(200, body))
    with pytest.raises(KeySourceUnavailable):
        auth.authenticate({HEADER: alb.token()})


def test_the_async_path_and_the_cache(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    token = alb.token()

    async def twice() -> None:
        for _ in range(2):
            principal = await auth.authenticate_async({HEADER: token})
            assert principal is not None
            assert principal.provider == "aws-alb"

    asyncio.run(twice())
    assert auth.stats.hits == 1
    assert fetches(alb) == 1
    # the cache entry is never a hit for an Authorization value: that is no credential at all
    assert auth.authenticate({"authorization": f"{HEADER} {token}"}) is None
    app = AuthGateMiddleware(starlette_app(), auth)
    with TestClient(app) as client:
        assert client.get("/whoami", headers={HEADER: token}).status_code == 200
        assert (
            client.get("/whoami", headers={"authorization": f"{HEADER} {token}"}).status_code == 401
        )


def test_alb_under_a_real_server_asgi_and_wsgi(alb: FakeALB) -> None:
    auth = Authenticator([provider_for(alb)])
    app = AuthGateMiddleware(starlette_app(), auth)
    with serve_asgi(app) as url:
        ok = httpx.get(url + "/whoami", headers={HEADER: alb.token()})
        assert ok.status_code == 200, ok.text
        assert ok.json()["provider"] == "aws-alb"
        refused = httpx.get(url + "/whoami", headers={HEADER: alb.token(header={"client": "x"})})
        assert refused.status_code == 401
        assert "Bearer" in refused.headers["www-authenticate"]

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"subject": environ[ENVIRON_KEY].subject}).encode()]

    client = Client(AuthGateWSGIMiddleware(wsgi_app, auth))
    answer = client.get("/", headers={HEADER: alb.token(subject="carol")})
    assert answer.status_code == 200
    assert answer.json == {"subject": "carol"}
    assert client.get("/", headers={HEADER: alb.token(header={"client": "x"})}).status_code == 401


def test_a_cached_bearer_token_beside_albs_header_is_still_ambiguous(alb: FakeALB) -> None:
    """Bearer tokens and ALB's header in one deployment: a Bearer value served from the cache
    is refused beside ALB's header (400) as the first one was, under a real ASGI server and a
    WSGI app alike, never admitted as the Bearer token's subject."""
    key = SigningKey("HS256", kid="api", private=b"k" * 32)
    verifier = JWTVerifier(key.keyset(), algorithms=["HS256"], issuer="https://api.test")
    bearer = "Bearer " + TokenFactory(key=key, issuer="https://api.test").mint("dave")
    auth = Authenticator([provider_for(alb), JWTProvider("api", verifier)])
    both = {"authorization": bearer, HEADER: alb.token(subject="carol")}
    with serve_asgi(AuthGateMiddleware(starlette_app(), auth)) as url:
        assert httpx.get(url + "/whoami", headers={"authorization": bearer}).status_code == 200
        assert auth.cache is not None
        assert len(auth.cache) == 1  # a hit from now on
        refused = httpx.get(url + "/whoami", headers=both)
        assert refused.status_code == 400
        assert "or another credential" in refused.headers["www-authenticate"]

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].subject.encode()]

    client = Client(AuthGateWSGIMiddleware(wsgi_app, auth))
    assert client.get("/", headers={"authorization": bearer}).text == "dave"
    hits = auth.cache.hits
    assert client.get("/", headers={"authorization": bearer}).text == "dave"
    assert auth.cache.hits == hits + 1
    assert client.get("/", headers=both).status_code == 400


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/0123456789abcdef",
            "not an Application Load Balancer ARN",
        ),
        ("my-load-balancer", "not an Application Load Balancer ARN"),
        (
            [
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/a/0123456789abcdef",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/b/0123456789abcdef",
            ],
            "one aws_alb provider per region",
        ),
        ([], "non-empty"),
    ],
)
def test_alb_configuration_mistakes_are_refused(arn: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        aws_alb(arn, client_id="c", issuer=None)


def test_alb_key_urls_by_region() -> None:
    arn = "arn:aws:elasticloadbalancing:{}:123456789012:loadbalancer/app/a/0123456789abcdef"
    provider = aws_alb(arn.format("eu-west-1"), client_id="c", issuer=None)
    assert "public-keys.auth.elb.eu-west-1.amazonaws.com" in repr(provider.verifier.key_source)
    gov = aws_alb(
        arn.format("us-gov-west-1").replace("arn:aws:", "arn:aws-us-gov:"), client_id="c",
        issuer=None,
    )  # fmt: skip
    assert "aws-elb-public-keys-prod-us-gov-west-1" in repr(gov.verifier.key_source)
    assert (
        alb_keys_url("ap-southeast-2")
        == "https://public-keys.auth.elb.ap-southeast-2.amazonaws.com"
    )
    with pytest.raises(ConfigurationError, match="not an AWS region"):
        alb_keys_url("europe")


def test_one_provider_header_at_most() -> None:
    class Other(JWTProvider):
        token_header = "x-other-token"
        accepts_jwt = False

    arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/a/0123456789abcdef"
    alb = aws_alb(arn, client_id="c", issuer=None)
    other = Other("other", alb.verifier)
    with pytest.raises(ConfigurationError, match="at most one provider header"):
        Authenticator([alb, other])
    other.token_header = "Authorization"
    with pytest.raises(ConfigurationError, match="lower-case header name"):
        Authenticator([other])


def test_fake_alb_tokens_are_shaped_as_aws_documents(alb: FakeALB) -> None:
    """The header carries typ, alg, kid (a UUID), signer, iss, client and exp; the key is
    PEM."""
    segment = alb.token().split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment))
    assert set(header) == {"typ", "alg", "kid", "signer", "iss", "client", "exp"}
    assert header["alg"] == "ES256"
    assert uuid.UUID(header["kid"]).version == 4
    pem = httpx.get(f"{alb.url}/{alb.key.kid}").content
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert httpx.get(f"{alb.url}/{uuid.uuid4()}").status_code == 403


def test_key_fetches_are_reported(alb: FakeALB) -> None:
    """Each fetch is a KeyFetch event: why, result and the keys now held."""
    events: list[object] = []
    auth = Authenticator([provider_for(alb)])
    auth.add_listener(events.append)
    assert who(auth, {HEADER: alb.token()})
    with pytest.raises(KeyNotFound):
        auth.authenticate({HEADER: alb.token(header={"kid": str(uuid.uuid4())})})
    alb.fault = "error"
    with pytest.raises(KeySourceUnavailable):
        auth.authenticate({HEADER: alb.token(header={"kid": str(uuid.uuid4())})})
    fetched = [(e.why, e.result, e.keys) for e in events if isinstance(e, KeyFetch)]
    assert fetched == [("cold", "ok", 1), ("unknown_kid", "ok", 1), ("unknown_kid", "failed", 0)]


def test_a_signed_out_alb_token_is_refused(alb: FakeALB) -> None:
    """Revoking an ALB token (padded as received) refuses it, cached or never seen."""
    auth = Authenticator([provider_for(alb)])
    seen, unseen = alb.token(), alb.token(subject="bob")
    assert who(auth, {HEADER: seen})
    for token in (seen, unseen):
        auth.revoke(token)
        with pytest.raises(RevokedToken):
            auth.authenticate({HEADER: token})


def test_non_canonical_base64_is_malformed(alb: FakeALB) -> None:
    """A segment whose last character sets spare bits decodes to the same bytes: refused."""
    auth = Authenticator([provider_for(alb)])
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    h, p, s = alb.token().split(".")
    body = p.rstrip("=")
    assert len(body) % 4 in (2, 3)
    mangled = body[:-1] + alphabet[alphabet.index(body[-1]) + 1]  # one spare bit set
    with pytest.raises(MalformedToken, match="canonical"):
        auth.authenticate({HEADER: f"{h}.{mangled}{p[len(body) :]}.{s}"})


def test_at_most_16_keys_are_held(alb: FakeALB) -> None:
    """The most recent 16 kids are kept: the oldest key must be fetched again."""
    now = [1000.0]
    provider = aws_alb(alb.arn, client_id=alb.client_id, issuer=alb.issuer, keys_url=alb.url,
                       upstream=Upstream(clock=lambda: now[0]))  # fmt: skip
    auth = Authenticator([provider], cache=None)
    first = alb.token()
    for i in range(17):
        if i % 8 == 0:
            now[0] += 31  # past the cooldown: the next 8 kids may be fetched
        assert who(auth, {HEADER: alb.token()})
        alb.rotate()
    fetched = fetches(alb)
    assert fetched == 17
    now[0] += 31
    assert who(auth, {HEADER: first})  # evicted: fetched again
    assert fetches(alb) == fetched + 1
