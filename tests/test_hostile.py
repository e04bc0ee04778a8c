"""Hostile inputs found by the security review: each is a clean refusal, never a crash.

Regression tests for issue 9's defects 1-3: lone surrogates and wrongly typed header members,
numeric dates beyond ±2^53, and ECDSA's second signature defeating revoke(token).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from authgate import (
    Authenticator,
    ClientAuth,
    ConfigurationError,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    MalformedToken,
    ProviderUnavailable,
    RevokedToken,
)
from authgate.asgi import AuthGateMiddleware
from authgate.extract import Credential
from authgate.keys import _CURVES
from authgate.testing import LocalIssuer, SigningKey, TokenFactory

from .apps import starlette_app
from .conftest import NOW, fixed_clock

ISSUER = "https://issuer.test"


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def hs256() -> TokenFactory:
    """HS256 tokens at the frozen 'now'."""
    return TokenFactory(
        key=SigningKey("HS256", kid="k1", private=b"h" * 32), issuer=ISSUER, clock=fixed_clock
    )


def verifier_for(factory: TokenFactory, **options: Any) -> JWTVerifier:
    """A verifier of the factory's keys at the frozen 'now'."""
    return JWTVerifier(
        factory.keyset(), algorithms=[factory.alg], issuer=ISSUER, clock=fixed_clock, **options
    )


def claims(**extra: Any) -> str:
    """A payload's JSON text: a valid subject, issuer and expiry, plus extra raw members."""
    body = {"sub": "u", "iss": ISSUER, "iat": int(NOW), "exp": int(NOW) + 600}
    text = json.dumps(body)[:-1]
    for name, raw in extra.items():
        text += f', "{name}": {raw}'
    return text + "}"


HOSTILE_HEADERS = [
    pytest.param('{"alg":"HS256","kid":"\\ud800"}', id="kid-lone-surrogate"),
    pytest.param('{"alg":"HS256","kid":"k1","x":"\\udfff"}', id="other-member-lone-surrogate"),
    pytest.param('{"alg":"HS256","kid":null}', id="kid-null"),
    pytest.param('{"alg":"HS256","kid":7}', id="kid-number"),
    pytest.param('{"alg":"HS256","kid":"k1","typ":null}', id="typ-null"),
    pytest.param('{"alg":"HS256","kid":"k1","typ":["JWT"]}', id="typ-array"),
    pytest.param('{"alg":null,"kid":"k1"}', id="alg-null"),
    pytest.param('{"alg":["HS256"],"kid":"k1"}', id="alg-array"),
    pytest.param('{"alg":"HS256","kid":"k1","crit":null}', id="crit-null"),
    pytest.param('{"alg":"HS256","kid":"k1","crit":"exp"}', id="crit-string"),
    pytest.param('{"alg":"HS256","kid":"k1","crit":[]}', id="crit-empty"),
    pytest.param('{"alg":"HS256","kid":"k1","b64":null}', id="b64-null"),
    pytest.param('{"alg":"HS256","kid":"k1","b64":"false"}', id="b64-string"),
]


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
def test_hostile_header_members_are_malformed(hs256: TokenFactory, header: str) -> None:
    """A lone surrogate anywhere, or a member we read with the wrong type (null included), is
    'malformed': never a UnicodeEncodeError, never treated as absent."""
    token = hs256.sign(header, claims())
    with pytest.raises(MalformedToken):
        verifier_for(hs256).verify(token)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"name": '"\\ud800"'}, id="claim-lone-surrogate"),
        pytest.param({"\\udc00": "1"}, id="member-name-lone-surrogate"),
        pytest.param({"nested": '{"deep": ["ok", "\\ud83d"]}'}, id="nested-lone-surrogate"),
    ],
)
def test_lone_surrogates_in_the_payload_are_malformed(
    hs256: TokenFactory, extra: dict[str, str]
) -> None:
    """The strict JSON reader refuses lone surrogates in the payload too."""
    token = hs256.sign('{"alg":"HS256","kid":"k1"}', claims(**extra))
    with pytest.raises(MalformedToken):
        verifier_for(hs256).verify(token)


def test_a_surrogate_pair_is_text(hs256: TokenFactory) -> None:
    """A properly paired escape (an emoji) is ordinary text and verifies."""
    token = hs256.sign('{"alg":"HS256","kid":"k1"}', claims(name='"\\ud83d\\ude00"'))
    assert verifier_for(hs256).verify(token)["name"] == "\U0001f600"


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1e400", "10" + "0" * 400, "-" + "9" * 400, "9007199254740993"])
def test_numeric_dates_beyond_2_53_are_malformed(
    hs256: TokenFactory, name: str, value: str
) -> None:
    """A huge numeric date is 'malformed', never an OverflowError (1e400 is Infinity to
    Python's JSON reader, refused as such)."""
    body = json.loads(claims())
    body.pop(name, None)
    text = json.dumps(body)[:-1] + f', "{name}": {value}' + "}"
    token = hs256.sign('{"alg":"HS256","kid":"k1"}', text)
    with pytest.raises(MalformedToken):
        verifier_for(hs256).verify(token)


def test_a_huge_exp_is_refused_before_any_key_fetch() -> None:
    """With a remote key source and an unknown kid, a huge exp is refused before the fetch
    (it used to raise OverflowError there, on every request, never starting a cooldown)."""
    with LocalIssuer("RS256") as issuer:
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url), algorithms=["RS256"], issuer=issuer.url
        )
        text = json.dumps({"sub": "u", "iss": issuer.url})[:-1] + ', "exp": ' + "9" * 400 + "}"
        token = issuer.factory.sign('{"alg":"RS256","kid":"unknown"}', text)
        for _ in range(3):
            with pytest.raises(MalformedToken):
                verifier.verify(token)
        assert issuer.jwks_requests == 0


def test_revoke_refuses_a_huge_exp_with_an_authgate_error(hs256: TokenFactory) -> None:
    """revoke() of a token whose exp is beyond ±2^53 raises MalformedToken, nothing else;
    a non-numeric expires_at is a ValueError and a token that is no string a TypeError (usage
    errors, not configuration)."""
    auth = Authenticator([JWTProvider("p", verifier_for(hs256))], clock=fixed_clock)
    text = json.dumps({"sub": "u"})[:-1] + ', "exp": ' + "9" * 400 + "}"
    with pytest.raises(MalformedToken):
        auth.revoke(hs256.sign('{"alg":"HS256"}', text))
    with pytest.raises(ValueError, match="expires_at") as caught:
        auth.revoke(jti="j", expires_at=float("inf"))
    assert not isinstance(caught.value, ConfigurationError)
    with pytest.raises(TypeError, match="string"):
        auth.revoke(12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        auth.revoke("")


def test_hostile_tokens_through_the_middleware_are_401s(hs256: TokenFactory) -> None:
    """Through a real app: each hostile token is a 401 'malformed', never a 500."""
    auth = Authenticator([JWTProvider("p", verifier_for(hs256))], clock=fixed_clock)
    tokens = [
        hs256.sign('{"alg":"HS256","kid":"\\ud800"}', claims()),
        hs256.sign('{"alg":"HS256","kid":"k1"}', claims(name='"\\udfff"')),
        hs256.sign('{"alg":"HS256","kid":"k1"}', claims().replace(str(int(NOW) + 600), "9" * 500)),
    ]
    with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
        for token in tokens:
            answer = client.get("/whoami", headers={"authorization": f"Bearer {token}"})
            assert answer.status_code == 401
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_a_malleated_ecdsa_signature_is_revoked_with_its_token(alg: str) -> None:
    """(r, n - s) is a second valid signature over the same signing input: both verify (JOSE
    requires no low-S form), and revoking either spelling refuses both, cached or not."""
    key = SigningKey(alg, kid="ec-1")
    factory = TokenFactory(key=key, issuer=ISSUER, clock=fixed_clock)
    verifier = verifier_for(factory)
    auth = Authenticator([JWTProvider("p", verifier)], clock=fixed_clock)
    token = factory.mint("signer", jti=None)  # no jti: only the signing input can match
    head, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    width = len(raw) // 2
    order = _CURVES[{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]][2]
    r, s = raw[:width], int.from_bytes(raw[width:], "big")
    twin = f"{head}.{payload}.{b64(r + (order - s).to_bytes(width, 'big'))}"
    assert twin != token
    assert verifier.verify(twin) == verifier.verify(token)
    assert auth.authenticate({"authorization": f"Bearer {twin}"}) is not None  # now cached
    auth.revoke(token)
    for spelling in (token, twin):
        with pytest.raises(RevokedToken):
            auth.authenticate({"authorization": f"Bearer {spelling}"})


def test_revoking_a_token_revokes_its_jti(hs256: TokenFactory) -> None:
    """revoke(token) also denies the token's jti: a re-signed token with the same jti is
    refused too."""
    auth = Authenticator([JWTProvider("p", verifier_for(hs256))], clock=fixed_clock)
    first = hs256.mint("u", jti="session-1")
    second = hs256.mint("u", jti="session-1", extra="differs")
    auth.revoke(first)
    with pytest.raises(RevokedToken):
        auth.authenticate({"authorization": f"Bearer {second}"})


def test_a_503_shows_clients_no_url_and_logs_no_userinfo_or_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A JWKS URL with a credential in its query: the client's 503 body says only that the
    keys are unavailable; the log names the location without the query. A URL with
    credentials in its userinfo is refused when configured, and never logged with them."""
    from authgate._log import safe_url

    with LocalIssuer("RS256") as issuer:
        host = issuer.url.removeprefix("http://")
        with pytest.raises(ConfigurationError, match="user name or password"):
            JWKSKeySource(f"http://reader:S3cretPass@{host}/.well-known/jwks.json")
        url = f"http://{host}/.well-known/jwks.json?api_key=Q7z9Secret"
        issuer.fault = "down"
        verifier = JWTVerifier(JWKSKeySource(url), algorithms=["RS256"], issuer=issuer.url)
        auth = Authenticator([JWTProvider("idp", verifier)])
        with TestClient(AuthGateMiddleware(starlette_app(), auth)) as client:
            answer = client.get("/whoami", headers={"authorization": f"Bearer {issuer.mint()}"})
    assert answer.status_code == 503
    body = answer.text
    for leak in ("127.0.0.1", "api_key", "Q7z9Secret", "jwks"):
        assert leak not in body
    assert f"{host}/.well-known/jwks.json" in caplog.text
    for leak in ("Q7z9Secret", "api_key"):
        assert leak not in caplog.text
    # a discovered location can still carry userinfo: logs show it without
    shown = safe_url(f"https://reader:S3cretPass@{host}/keys?api_key=Q7z9Secret")
    assert shown == f"https://{host}/keys"


def test_upstream_text_never_carries_our_secrets_or_the_credential_into_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Upstream error bodies echoing our Authon secret key, our introspection Basic
    credentials, a 19-character piece of the user's token, or the token upper-cased: none of
    it reaches a log record."""
    import httpx

    from authgate import AuthonProvider, IntrospectionProvider, Upstream

    secret_key = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    token = "opaque-" + "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6"
    basic = base64.b64encode(b"resource-api:cl1ent-Secret-Value").decode()
    echoes = iter(
        [
            f"key {secret_key} is over quota",
            f"Authorization: Basic {basic} refused",
            f"bad token ...{token[5:24]}...",
            f"cannot parse {token.upper()}",
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": "Server Error", "message": next(echoes)})

    upstream = Upstream(transport=httpx.MockTransport(answer))
    authon = AuthonProvider(secret_key=secret_key, upstream=upstream)
    introspection = IntrospectionProvider(
        "idp",
        "https://idp.example/introspect",
        auth=ClientAuth.basic("resource-api", "cl1ent-Secret-Value"),
        upstream=upstream,
    )
    for provider in (authon, introspection, introspection, introspection):
        with pytest.raises(ProviderUnavailable):
            provider.verify(Credential("bearer", token))
        provider.remote._results.clear()  # type: ignore[union-attr]
    records = "\n".join(record.getMessage() for record in caplog.records)
    assert records.count("verification failed") == 4
    for leak in (secret_key, basic, "cl1ent-Secret-Value", token[5:24], token.upper()[:16]):
        assert leak not in records
    assert "[redacted]" in records
    assert "withheld" in records


def _rsa_jwk(n: int, e: int) -> dict[str, Any]:
    def member(value: int) -> str:
        return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": "r", "n": member(n), "e": member(e)}


DEGENERATE_KEYS = [
    pytest.param(_rsa_jwk((1 << 2047) + 1, 2**64 + 1), "exponent", id="rsa-huge-exponent"),
    pytest.param(_rsa_jwk((1 << 2047) + 1, 65536), "exponent|e must", id="rsa-even-exponent"),
    pytest.param(_rsa_jwk((1 << 2047) + 1, 1), "exponent|e must", id="rsa-exponent-1"),
    pytest.param(_rsa_jwk((1 << 16383) + 1, 65537), "modulus", id="rsa-16384-bit-modulus"),
    pytest.param(_rsa_jwk((1 << 2047) + 2, 65537), "odd", id="rsa-even-modulus"),
    pytest.param(
        {"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x01" + bytes(31))},
        "small-order",
        id="ed-identity",
    ),
    pytest.param(
        {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes.fromhex("ec" + "ff" * 30 + "7f"))},
        "small-order",
        id="ed-order-2",
    ),
    pytest.param(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(
                bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85")
            ),
        },
        "small-order",
        id="ed-order-8",
    ),
    pytest.param(
        {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes.fromhex("ee" + "ff" * 30 + "7f"))},
        "non-canonical",
        id="ed-non-canonical",
    ),
]


@pytest.mark.parametrize(("jwk", "reason"), DEGENERATE_KEYS)
def test_degenerate_keys_are_refused_when_loaded(jwk: dict[str, Any], reason: str) -> None:
    """Keys only a key publisher could plant, but that make forged tokens cheap to accept or
    expensive to refuse, are refused at load, with the reason."""
    from authgate import KeySet

    with pytest.raises(ConfigurationError) as caught:
        KeySet.from_jwk(jwk)
    assert re.search(reason, caught.value.message)


def test_the_identity_point_no_longer_verifies_a_fixed_signature() -> None:
    """Before: an Ed25519 identity public key accepted the signature (identity, 0) for every
    message. Now the key is skipped from a published JWKS and nothing verifies."""
    from authgate.keys import parse_jwks

    keys, skipped = parse_jwks(
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x01" + bytes(31))}]}
    )
    assert keys == []
    assert "small-order" in skipped[0]


def test_a_kid_less_token_is_tried_against_at_most_ten_keys() -> None:
    """A set of 60 HS256 keys without kids: a kid-less token has 10 candidates, not 60."""
    from authgate import Key, KeySet

    keyset = KeySet(Key(bytes([i]) * 32) for i in range(60))
    assert len(keyset.candidates(None, "HS256")) == 10


def test_big_key_sets_are_bounded_and_summarised_in_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A JWKS with 150 usable and 3,000 unusable keys keeps 100 and writes one summary line."""
    import logging

    with LocalIssuer("ES256") as issuer:
        issuer.extra_keys = [SigningKey("ES256", kid=f"k{i}").public_jwk() for i in range(150)]
        issuer.extra_keys += [
            {"kty": "RSA", "kid": f"bad{i}", "n": "@", "e": "AQAB"} for i in range(3000)
        ]
        source = JWKSKeySource(issuer.jwks_url)
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=issuer.url)
        with caplog.at_level(logging.WARNING, logger="authgate.keys"):
            assert verifier.verify(issuer.mint("a"))["sub"] == "a"
        current = source.current()
        assert current is not None
        assert len(current) == 100
    lines = [r for r in caplog.records if r.name == "authgate.keys"]
    assert len(lines) == 1
    assert "skipped 3051 of 3151 keys" in lines[0].getMessage()
    assert len(lines[0].getMessage()) < 1000
