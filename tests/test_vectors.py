"""The published RFC 7515 / 7520 / 8037 examples as test cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate import InvalidToken, JWTVerifier, KeySet
from authgate._codec import b64url_decode

VECTORS = Path(__file__).resolve().parent / "data" / "rfc_jws_vectors.json"
PUBLISHED: dict[str, Any] = json.loads(VECTORS.read_text())["PUBLISHED"]
RFC7515_CLOCK = 1300819380 - 100  # before the examples' exp


@pytest.mark.parametrize("name", ["RFC7515-A.1", "RFC7515-A.2", "RFC7515-A.3"])
def test_rfc7515_jwt_examples_verify(name: str) -> None:
    """A.1 (HS256), A.2 (RS256), A.3 (ES256) verify with their published keys."""
    vector = PUBLISHED[name]
    verifier = JWTVerifier(
        KeySet.from_jwk(vector["jwk"]), algorithms=[vector["alg"]], clock=lambda: RFC7515_CLOCK
    )
    claims = verifier.verify(vector["token"])
    assert claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}


@pytest.mark.parametrize("name", ["RFC7515-A.1", "RFC7515-A.2", "RFC7515-A.3"])
def test_rfc7515_examples_expire_by_the_injected_clock(name: str) -> None:
    """The same examples are expired at their exp plus the leeway."""
    vector = PUBLISHED[name]
    verifier = JWTVerifier(
        KeySet.from_jwk(vector["jwk"]), algorithms=[vector["alg"]], clock=lambda: 1300819380 + 30
    )
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(vector["token"])
    assert caught.value.reason == "expired"


PROSE = ["RFC7515-A.4", "RFC8037-A.4", "RFC7520-4.1", "RFC7520-4.2", "RFC7520-4.3", "RFC7520-4.4"]


@pytest.mark.parametrize("name", PROSE)
def test_prose_payload_signatures_verify_at_the_key_layer(name: str) -> None:
    """Examples whose payload is prose: their signatures verify; as JWTs they are malformed."""
    vector = PUBLISHED[name]
    token: str = vector["token"]
    keys = KeySet.from_jwk(vector["jwk"])
    header = json.loads(b64url_decode(token.split(".")[0]))
    checks = keys.candidates(header.get("kid"), vector["alg"])
    assert checks, "the published key must be a candidate for its algorithm"
    signing_input, _, signature = token.rpartition(".")
    assert any(check(signing_input.encode(), b64url_decode(signature)) for check in checks)
    tampered = signing_input[:-2] + ("A" if signing_input[-2] != "A" else "B") + signing_input[-1]
    assert not any(check(tampered.encode(), b64url_decode(signature)) for check in checks)
    verifier = JWTVerifier(keys, algorithms=[vector["alg"]], required_claims=())
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("RFC7515-A.5", "malformed", id="A.5-alg-none-unsigned"),
        pytest.param("RFC7515-A.7", "malformed", id="A.7-json-serialization"),
        pytest.param("RFC7515-E", "malformed", id="E-crit-unsigned"),
    ],
)
def test_examples_that_must_be_rejected(name: str, reason: str) -> None:
    """alg none, the JSON serialization and the crit example never pass."""
    verifier = JWTVerifier(
        KeySet.from_jwk(PUBLISHED["RFC7515-A.3"]["jwk"]),
        algorithms=["ES256"],
        clock=lambda: RFC7515_CLOCK,
    )
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(PUBLISHED[name]["token"])
    assert caught.value.reason == reason


def test_alg_none_example_with_a_forged_signature_is_still_refused() -> None:
    """A.5 given a dummy signature segment is refused for its algorithm, not its shape."""
    token = PUBLISHED["RFC7515-A.5"]["token"] + "AAAA"
    verifier = JWTVerifier(
        KeySet.from_jwk(PUBLISHED["RFC7515-A.1"]["jwk"]),
        algorithms=["HS256"],
        clock=lambda: RFC7515_CLOCK,
    )
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.reason == "alg_not_allowed"


def test_crit_example_header_is_unsupported() -> None:
    """E's crit header, on a signed token, is refused as unsupported_header."""
    header_segment = PUBLISHED["RFC7515-E"]["token"].split(".")[0]
    header = json.loads(b64url_decode(header_segment))
    assert header["crit"] == ["http://example.com/UNDEFINED"]
    from authgate.testing import SigningKey, TokenFactory

    key = SigningKey("HS256", kid="k")
    header["alg"] = "HS256"
    token = TokenFactory(key=key).sign(json.dumps(header), json.dumps({"exp": 4e9}))
    with pytest.raises(InvalidToken) as caught:
        JWTVerifier(key.keyset(), algorithms=["HS256"]).verify(token)
    assert caught.value.reason == "unsupported_header"
