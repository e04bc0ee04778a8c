"""The verification rules of JWTVerifier, each with its own test."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from authgate import (
    ConfigurationError,
    InvalidToken,
    JWTVerifier,
    KeySet,
)
from authgate.testing import SigningKey, TokenFactory, b64url

from .conftest import ALL_ALGS, NOW, fixed_clock

MakeVerifier = Callable[..., JWTVerifier]


def reason_of(verifier: JWTVerifier, token: Any) -> str:
    """The reason the verifier rejects ``token`` (fails the test if it accepts it)."""
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    message = caught.value.message
    if isinstance(token, str) and len(token) > 20:
        assert token not in message
        assert token[:20] not in message
    return caught.value.reason


# -- the happy path, every algorithm ---------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_every_algorithm_verifies(alg: str, signing_keys: dict[str, SigningKey]) -> None:
    """A token signed with each supported algorithm verifies and returns its claims."""
    key = signing_keys[alg]
    factory = TokenFactory(key=key, clock=fixed_clock)
    verifier = JWTVerifier(key.keyset(), algorithms=[alg], clock=fixed_clock)
    claims = verifier.verify(factory.mint("alice", role="admin"))
    assert claims["sub"] == "alice"
    assert claims["role"] == "admin"


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_every_algorithm_rejects_a_flipped_signature(
    alg: str, signing_keys: dict[str, SigningKey]
) -> None:
    """Changing one signature byte fails with bad_signature for each algorithm."""
    key = signing_keys[alg]
    token = TokenFactory(key=key, clock=fixed_clock).mint()
    head, _, sig = token.rpartition(".")
    raw = bytearray(__import__("base64").urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    verifier = JWTVerifier(key.keyset(), algorithms=[alg], clock=fixed_clock)
    assert reason_of(verifier, f"{head}.{b64url(bytes(raw))}") == "bad_signature"


@pytest.mark.anyio
async def test_verify_async_matches_verify(
    factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """verify_async returns the same claims as verify for a static key set."""
    verifier = make_verifier()
    token = factory.mint("bob")
    assert await verifier.verify_async(token) == verifier.verify(token)


def test_a_second_token_with_the_same_header_reuses_the_parsed_header(
    factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """Two tokens sharing a header segment parse it once; both verify."""
    verifier = make_verifier()
    first, second = factory.mint("a"), factory.mint("b")
    assert first.split(".")[0] == second.split(".")[0]
    verifier.verify(first)
    parsed = verifier._headers.get(first.split(".")[0])
    assert parsed is not None
    assert verifier.verify(second)["sub"] == "b"
    assert verifier._headers.get(second.split(".")[0]) is parsed
    assert len(verifier._headers) == 1


# -- size and shape --------------------------------------------------------------------------


def test_size_is_checked_before_anything_else(make_verifier: MakeVerifier) -> None:
    """A token over max_token_bytes is too_large even when it is not a JWT at all."""
    verifier = make_verifier(max_token_bytes=100)
    assert reason_of(verifier, "!" * 101) == "too_large"
    assert reason_of(verifier, "!" * 100) == "malformed"


def _segments(factory: TokenFactory) -> tuple[str, str, str]:
    head, payload, sig = factory.mint().split(".")
    return head, payload, sig


SHAPES: list[Any] = [
    pytest.param(lambda h, p, s: "", id="empty"),
    pytest.param(lambda h, p, s: f"Bearer {h}.{p}.{s}", id="bearer-prefix"),
    pytest.param(lambda h, p, s: f"{h}.{p}", id="two-segments"),
    pytest.param(lambda h, p, s: f"{h}.{p}.{s}.{s}", id="four-segments"),
    pytest.param(lambda h, p, s: f"{h}.{p}.{s}.{s}.{s}", id="jwe-five-segments"),
    pytest.param(lambda h, p, s: f"{h}.{p}.", id="empty-signature"),
    pytest.param(lambda h, p, s: f"{h}..{s}", id="empty-payload"),
    pytest.param(lambda h, p, s: f"{h}=.{p}.{s}", id="padding"),
    pytest.param(lambda h, p, s: f"{h}.{p}.{s}==", id="padded-signature"),
    pytest.param(lambda h, p, s: f"{h}.{p[:10]}+{p[11:]}.{s}", id="plus-alphabet"),
    pytest.param(lambda h, p, s: f"{h}.{p[:10]}/{p[11:]}.{s}", id="slash-alphabet"),
    pytest.param(lambda h, p, s: f"{h}.{p} .{s}", id="space"),
    pytest.param(lambda h, p, s: f"{h}.{p}\n.{s}", id="newline"),
    pytest.param(lambda h, p, s: f" {h}.{p}.{s}", id="leading-space"),
    pytest.param(lambda h, p, s: f"{h}.{p}.{s}\x00", id="nul"),
    pytest.param(lambda h, p, s: f"{h}.{p}.{s}é", id="non-ascii"),
    pytest.param(
        lambda h, p, s: json.dumps({"protected": h, "payload": p}), id="json-serialization"
    ),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_malformed_shapes_are_rejected(
    shape: Callable[[str, str, str], str], factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """Anything but three canonical unpadded base64url segments is malformed."""
    assert reason_of(make_verifier(), shape(*_segments(factory))) == "malformed"


@pytest.mark.parametrize(
    "value", [None, 42, ["a.b.c"], {"t": 1}], ids=["none", "int", "list", "dict"]
)
def test_a_token_that_is_not_text_is_malformed(value: Any, make_verifier: MakeVerifier) -> None:
    """Non-string input is refused with a clear reason, never a TypeError."""
    assert reason_of(make_verifier(), value) == "malformed"


def test_bytes_tokens_are_accepted(factory: TokenFactory, make_verifier: MakeVerifier) -> None:
    """An ASCII bytes token verifies like its text."""
    assert make_verifier().verify(factory.mint().encode())["sub"] == "user-1"


def test_non_canonical_trailing_bits_are_malformed(
    factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """A last character with non-zero spare bits is a second spelling of the same bytes."""
    h, p, s = _segments(factory)
    assert len(s) % 4 in (2, 3)  # RSA-2048 signature: 256 bytes -> 342 chars (rest 2)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(s[-1])
    bumped = s[:-1] + alphabet[index + 1]  # same decoded bytes, different spare bits
    assert reason_of(make_verifier(), f"{h}.{p}.{bumped}") == "malformed"


# -- header ----------------------------------------------------------------------------------

HEADERS: list[Any] = [
    pytest.param(b"\xff\xfe{}", "malformed", id="not-utf8"),
    pytest.param(b"[1,2]", "malformed", id="array"),
    pytest.param(b'"RS256"', "malformed", id="string"),
    pytest.param(b"{", "malformed", id="truncated-json"),
    pytest.param(b'{"alg":"RS256","alg":"HS256"}', "malformed", id="duplicate-alg"),
    pytest.param(b'{"alg":"RS256","x":NaN}', "malformed", id="nan"),
    pytest.param(b'{"alg":"RS256","x":Infinity}', "malformed", id="infinity"),
    pytest.param(b'\xef\xbb\xbf{"alg":"RS256"}', "malformed", id="bom"),
    pytest.param(b'{"typ":"JWT"}', "malformed", id="no-alg"),
    pytest.param(b'{"alg":256}', "malformed", id="alg-not-string"),
    pytest.param(b'{"alg":"RS256","enc":"A128GCM"}', "malformed", id="enc"),
    pytest.param(b'{"alg":"RS256","crit":["exp"]}', "unsupported_header", id="crit"),
    pytest.param(
        b'{"alg":"RS256","b64":false,"crit":["b64"]}', "unsupported_header", id="b64-crit"
    ),
    pytest.param(b'{"alg":"RS256","b64":true}', "unsupported_header", id="b64"),
    pytest.param(b'{"alg":"none"}', "alg_not_allowed", id="none"),
    pytest.param(b'{"alg":"None"}', "alg_not_allowed", id="None"),
    pytest.param(b'{"alg":"NONE"}', "alg_not_allowed", id="NONE"),
    pytest.param(b'{"alg":"nOnE"}', "alg_not_allowed", id="nOnE"),
    pytest.param(b'{"alg":"HS256"}', "alg_not_allowed", id="hs256-not-listed"),
    pytest.param(b'{"alg":"rs256"}', "alg_not_allowed", id="case-variant"),
    pytest.param(b'{"alg":"RS256","kid":7}', "malformed", id="kid-not-string"),
    pytest.param(b'{"alg":"RS256","kid":"' + b"k" * 257 + b'"}', "malformed", id="kid-too-long"),
    pytest.param(b'{"alg":"RS256","kid":"other"}', "key_not_found", id="unknown-kid"),
    pytest.param(b'{"alg":"RS256","kid":"RSA-1"}', "key_not_found", id="kid-case-differs"),
    pytest.param(b'{"alg":"RS256","kid":"rsa-1 "}', "key_not_found", id="kid-trailing-space"),
]


@pytest.mark.parametrize(("header", "reason"), HEADERS)
def test_header_rules(
    header: bytes, reason: str, factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """Each bad header is refused with its own reason, before any crypto."""
    token = factory.sign(header, json.dumps(factory.claims()))
    assert reason_of(make_verifier(), token) == reason


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
def test_embedded_key_headers_are_never_used(
    member: str, factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """An attacker key named in jku/x5u/jwk/x5c is never used: only configured keys count."""
    attacker = SigningKey("RS256", kid="rsa-1")
    value: Any = attacker.public_jwk() if member == "jwk" else "http://127.0.0.1:9/keys"
    header = {"alg": "RS256", "kid": "rsa-1", member: [value] if member == "x5c" else value}
    token = factory.sign(json.dumps(header), json.dumps(factory.claims()), attacker)
    assert reason_of(make_verifier(), token) == "bad_signature"
    honest = factory.sign(json.dumps(header), json.dumps(factory.claims()))
    assert make_verifier().verify(honest)["sub"] == "user-1"


def test_typ_requirement(factory: TokenFactory, make_verifier: MakeVerifier) -> None:
    """With typ configured, at+jwt and application/AT+JWT pass; JWT and a missing typ do not."""
    verifier = make_verifier(typ="at+jwt")
    assert verifier.verify(factory.mint(headers={"typ": "at+jwt"}))
    assert verifier.verify(factory.mint(headers={"typ": "application/AT+JWT"}))
    assert reason_of(verifier, factory.mint(headers={"typ": "JWT"})) == "unsupported_header"
    assert reason_of(verifier, factory.mint(headers={"typ": None})) == "unsupported_header"


# -- keys ------------------------------------------------------------------------------------


def test_hs256_token_with_an_rsa_public_key_as_secret_fails(
    factory: TokenFactory, rs256: SigningKey
) -> None:
    """The classic confusion attack: HMAC keyed with the RSA public key finds no oct key."""
    from cryptography.hazmat.primitives import serialization

    public_pem = rs256.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forger = SigningKey("HS256", kid="rsa-1", private=public_pem)
    token = factory.mint(key=forger)
    verifier = JWTVerifier(
        KeySet.from_pem(public_pem, kid="rsa-1"), algorithms=["RS256", "HS256"], clock=fixed_clock
    )
    assert reason_of(verifier, token) == "key_not_found"


def test_without_kid_every_suitable_key_is_tried(signing_keys: dict[str, SigningKey]) -> None:
    """A kid-less token verifies against the one key of several that signed it."""
    es, ed, rs = signing_keys["ES256"], signing_keys["EdDSA"], signing_keys["RS256"]
    keys = KeySet.from_jwks({"keys": [es.public_jwk(), ed.public_jwk(), rs.public_jwk()]})
    verifier = JWTVerifier(keys, algorithms=["RS256", "ES256", "EdDSA"], clock=fixed_clock)
    for key in (es, ed, rs):
        token = TokenFactory(key=key, clock=fixed_clock).mint(headers={"kid": None})
        assert verifier.verify(token)["sub"] == "user-1"


KEY_MISMATCHES: list[Any] = [
    pytest.param({"alg": "RS384"}, "RS256", id="jwk-alg-differs"),
    pytest.param({"use": "enc"}, "RS256", id="use-enc"),
]


@pytest.mark.parametrize(("change", "alg"), KEY_MISMATCHES)
def test_a_key_whose_metadata_disagrees_is_not_a_candidate(
    change: dict[str, str], alg: str, rs256: SigningKey
) -> None:
    """A JWK whose alg or use does not fit the token is never used."""
    from authgate.keys import Key, key_from_jwk

    jwk = rs256.public_jwk()
    base = key_from_jwk(jwk)
    key = Key(base.material, kid=jwk["kid"], alg=change.get("alg"), use=change.get("use"))
    verifier = JWTVerifier(
        KeySet([key, Key(SigningKey("ES256").private.public_key(), kid="x")]),
        algorithms=[alg, "ES256"],
        clock=fixed_clock,
    )
    token = TokenFactory(key=rs256, clock=fixed_clock).mint()
    assert reason_of(verifier, token) == "key_not_found"


def test_ec_key_of_another_curve_is_not_a_candidate(signing_keys: dict[str, SigningKey]) -> None:
    """An ES256 token finds no candidate among P-384 keys sharing its kid."""
    p384 = signing_keys["ES384"].public_jwk()
    p384["kid"] = "shared"
    p384.pop("alg")
    verifier = JWTVerifier(
        KeySet.from_jwks({"keys": [p384]}), algorithms=["ES256", "ES384"], clock=fixed_clock
    )
    token = TokenFactory(key=signing_keys["ES256"], clock=fixed_clock).mint(
        headers={"kid": "shared"}
    )
    assert reason_of(verifier, token) == "key_not_found"


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(b"\x00" * 64, id="r-and-s-zero"),
        pytest.param(b"\xff" * 64, id="r-and-s-above-n"),
        pytest.param(b"\x01" * 63, id="short"),
        pytest.param(b"\x01" * 65, id="long"),
        pytest.param(bytes.fromhex("3044022001") + b"\x01" * 59, id="der-looking"),
    ],
)
def test_ecdsa_signature_shape_and_range(
    signature: bytes, signing_keys: dict[str, SigningKey]
) -> None:
    """ES256 wants exactly 64 raw bytes with r and s in [1, n-1]."""
    key = signing_keys["ES256"]
    h, p, _ = TokenFactory(key=key, clock=fixed_clock).mint().split(".")
    verifier = JWTVerifier(key.keyset(), algorithms=["ES256"], clock=fixed_clock)
    assert reason_of(verifier, f"{h}.{p}.{b64url(signature)}") == "bad_signature"


# -- payload and claims ----------------------------------------------------------------------

PAYLOADS: list[Any] = [
    pytest.param(b"[]", "malformed", id="array"),
    pytest.param(b"null", "malformed", id="null"),
    pytest.param(b"\xc3\x28", "malformed", id="not-utf8"),
    pytest.param('{"sub":"a"}'.encode("utf-16"), "malformed", id="utf16"),
    pytest.param(b'{"sub":"a","sub":"b","exp":1900000000}', "malformed", id="duplicate"),
    pytest.param(b'{"exp":1900000000,"n":{"a":1,"a":2}}', "malformed", id="nested-duplicate"),
    pytest.param(b'{"exp":NaN}', "malformed", id="nan"),
    pytest.param(b'{"exp":1e400}', "malformed", id="exp-overflows-to-infinity"),
    pytest.param(b'{"exp":"1900000000"}', "malformed", id="exp-string"),
    pytest.param(b'{"exp":true}', "malformed", id="exp-bool"),
    pytest.param(b'{"exp":1900000000,"nbf":"0"}', "malformed", id="nbf-string"),
    pytest.param(b'{"exp":1900000000,"iat":false}', "malformed", id="iat-bool"),
    pytest.param(
        b'{"exp":1900000000,"deep":' + b"[" * 100000 + b"]" * 100000 + b"}",
        "too_large",
        id="deep-nesting-too-large",
    ),
    pytest.param(
        b'{"exp":1900000000,"deep":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "malformed",
        id="deep-nesting",
    ),
    pytest.param(b'{"exp":1900000000,"n":' + b"9" * 5000 + b"}", "malformed", id="huge-int"),
    pytest.param(b"{}", "missing_claim", id="no-exp"),
    pytest.param(b'{"exp":null}', "missing_claim", id="exp-null"),
]


@pytest.mark.parametrize(("payload", "reason"), PAYLOADS)
def test_payload_rules(payload: bytes, reason: str, factory: TokenFactory) -> None:
    """Each bad payload is refused with its own reason, never an exception of another kind."""
    verifier = JWTVerifier(
        factory.key.keyset(), algorithms=["RS256"], clock=fixed_clock, max_token_bytes=20000
    )
    token = factory.sign(json.dumps({"alg": "RS256", "kid": "rsa-1"}), payload)
    assert reason_of(verifier, token) == reason


CLAIMS: list[Any] = [
    pytest.param({"exp": NOW - 31}, "expired", id="expired-beyond-leeway"),
    pytest.param({"exp": NOW - 30}, "expired", id="expired-at-leeway-edge"),
    pytest.param({"exp": NOW - 29.5}, None, id="exp-fraction-inside-leeway"),
    pytest.param({"exp": NOW - 30.0001}, "expired", id="exp-fraction-not-truncated"),
    pytest.param({"nbf": NOW + 31}, "not_yet_valid", id="nbf-future"),
    pytest.param({"nbf": NOW + 30}, None, id="nbf-at-leeway-edge"),
    pytest.param({"nbf": NOW + 30.001}, "not_yet_valid", id="nbf-fraction"),
    pytest.param({"iat": NOW + 31}, "not_yet_valid", id="iat-future"),
    pytest.param({"iat": NOW - 86400 * 365}, None, id="iat-old-is-fine"),
    pytest.param({"iss": None}, "bad_issuer", id="iss-missing"),
    pytest.param({"iss": "https://issuer.test/"}, "bad_issuer", id="iss-trailing-slash"),
    pytest.param({"iss": "https://ISSUER.test"}, "bad_issuer", id="iss-case"),
    pytest.param({"iss": ["https://issuer.test"]}, "bad_issuer", id="iss-array"),
    pytest.param({"aud": "api"}, "bad_audience", id="aud-without-configured-audience"),
]


@pytest.mark.parametrize(("claims", "reason"), CLAIMS)
def test_claim_rules(
    claims: dict[str, Any], reason: str | None, factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """exp/nbf/iat with leeway 30 s, exact iss, and aud refused when no audience is configured."""
    token = factory.mint(**claims)
    verifier = make_verifier()
    if reason is None:
        assert verifier.verify(token)["sub"] == "user-1"
    else:
        assert reason_of(verifier, token) == reason


AUDIENCES: list[Any] = [
    pytest.param("api", "api", None, id="string-match"),
    pytest.param("api", ["other", "api"], None, id="array-contains"),
    pytest.param(["api", "web"], "web", None, id="one-of-configured"),
    pytest.param("api", "API", "bad_audience", id="case-differs"),
    pytest.param("api", ["other"], "bad_audience", id="array-without"),
    pytest.param("api", [], "bad_audience", id="empty-array"),
    pytest.param("api", None, "bad_audience", id="missing"),
    pytest.param("api", 7, "malformed", id="number"),
    pytest.param("api", ["api", 7], "malformed", id="array-with-number"),
]


@pytest.mark.parametrize(("configured", "aud", "reason"), AUDIENCES)
def test_audience_rules(
    configured: Any,
    aud: Any,
    reason: str | None,
    factory: TokenFactory,
    make_verifier: MakeVerifier,
) -> None:
    """aud must contain a configured audience, exactly."""
    verifier = make_verifier(audience=configured)
    token = factory.mint(aud=aud)
    if reason is None:
        assert verifier.verify(token)["aud"] == aud
    else:
        assert reason_of(verifier, token) == reason


def test_required_claims(factory: TokenFactory, make_verifier: MakeVerifier) -> None:
    """Every required claim must be present and non-null."""
    verifier = make_verifier(required_claims=("exp", "sub", "tenant"))
    assert verifier.verify(factory.mint(tenant="t1"))["tenant"] == "t1"
    assert reason_of(verifier, factory.mint()) == "missing_claim"
    assert reason_of(verifier, factory.mint(tenant=None)) == "missing_claim"


def test_clock_is_injectable(factory: TokenFactory) -> None:
    """The same token is valid or expired depending only on the injected clock."""
    token = factory.mint()  # exp = NOW + 900
    keys = factory.key.keyset()
    later = JWTVerifier(keys, algorithms=["RS256"], clock=lambda: NOW + 931)
    assert JWTVerifier(keys, algorithms=["RS256"], clock=lambda: NOW + 929).verify(token)
    assert reason_of(later, token) == "expired"


def test_signature_is_checked_before_claims(
    factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """A forged expired token reports bad_signature: claims of unsigned data are never judged."""
    forged = factory.mint(exp=NOW - 1000, key=SigningKey("RS256", kid="rsa-1"))
    assert reason_of(make_verifier(), forged) == "bad_signature"


# -- configuration ---------------------------------------------------------------------------

CONFIGS: list[Any] = [
    pytest.param({"algorithms": []}, id="empty-allowlist"),
    pytest.param({"algorithms": ["none"]}, id="none"),
    pytest.param({"algorithms": ["RS256", "None"]}, id="None-among-others"),
    pytest.param({"algorithms": "RS256"}, id="string-not-list"),
    pytest.param({"algorithms": ["RS1"]}, id="unknown-alg"),
    pytest.param({"algorithms": ["HS256"]}, id="no-key-suits"),
    pytest.param({"leeway": -1}, id="negative-leeway"),
    pytest.param({"leeway": float("nan")}, id="nan-leeway"),
    pytest.param({"leeway": 301}, id="leeway-beyond-five-minutes"),
    pytest.param({"audience": []}, id="empty-audience"),
    pytest.param({"audience": [""]}, id="blank-audience"),
    pytest.param({"issuer": ""}, id="blank-issuer"),
    pytest.param({"max_token_bytes": 0}, id="zero-max-size"),
    pytest.param({"keys": {"keys": []}}, id="keys-not-a-keyset"),
]


@pytest.mark.parametrize("overrides", CONFIGS)
def test_unsafe_configuration_raises_at_construction(
    overrides: dict[str, Any], make_verifier: MakeVerifier
) -> None:
    """An unsafe or meaningless configuration fails at start-up, not on the first request."""
    with pytest.raises(ConfigurationError):
        make_verifier(**overrides)


def test_error_repr_and_message_never_hold_the_token(
    factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """Neither str() nor repr() of a rejection contains any part of the token."""
    token = factory.mint(exp=NOW - 100)
    with pytest.raises(InvalidToken) as caught:
        make_verifier().verify(token)
    for text in (str(caught.value), repr(caught.value)):
        for part in token.split("."):
            assert part[:16] not in text


@pytest.mark.parametrize(("depth", "accepted"), [(63, True), (64, True), (65, False)])
def test_json_nesting_limit_is_the_same_on_every_python(
    depth: int, accepted: bool, factory: TokenFactory, make_verifier: MakeVerifier
) -> None:
    """Nesting up to 64 levels parses; deeper is malformed, whatever the interpreter's limits."""
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # the claims object is level 1
    payload = json.dumps(factory.claims()).replace("}", f', "deep": {nested}}}', 1)
    token = factory.sign(json.dumps({"alg": "RS256", "kid": "rsa-1"}), payload)
    if accepted:
        assert make_verifier().verify(token)["sub"] == "user-1"
    else:
        assert reason_of(make_verifier(), token) == "malformed"


# -- the claim at fault ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason", "claim"),
    [
        pytest.param({"exp": int(NOW) - 60}, "expired", "exp", id="exp"),
        pytest.param({"nbf": int(NOW) + 600}, "not_yet_valid", "nbf", id="nbf"),
        pytest.param({"iat": int(NOW) + 600}, "not_yet_valid", "iat", id="iat"),
        pytest.param({"iss": "https://elsewhere.test"}, "bad_issuer", "iss", id="iss"),
        pytest.param({"aud": "another-api"}, "bad_audience", "aud", id="aud"),
        pytest.param({"jti": None}, "missing_claim", "jti", id="required-jti"),
    ],
)
def test_claim_errors_name_their_claim(claims: dict[str, Any], reason: str, claim: str) -> None:
    """Each claim refusal carries the claim at fault as ``.claim`` (PyJWT's and jose's field)."""
    key = SigningKey("HS256", kid="k", private=b"c" * 32)
    factory = TokenFactory(key=key, issuer="https://issuer.test", clock=fixed_clock)
    verifier = JWTVerifier(
        key.keyset(),
        algorithms=["HS256"],
        issuer="https://issuer.test",
        audience="my-api",
        required_claims=("exp", "jti"),
        clock=fixed_clock,
    )
    token = factory.mint("alice", **{"aud": "my-api", "jti": "j-1", **claims})
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert (caught.value.reason, caught.value.claim) == (reason, claim)


def test_a_principal_without_a_subject_names_the_subject_claim() -> None:
    """The principal's subject claim, missing, is a missing_claim refusal naming it."""
    from authgate.errors import MissingClaim
    from authgate.principal import principal_from_claims

    with pytest.raises(MissingClaim) as caught:
        principal_from_claims({"exp": NOW}, provider="p", subject_claim="oid")
    assert caught.value.claim == "oid"
