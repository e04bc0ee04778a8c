"""KeySet construction: JWK, JWKS, PEM and secrets; unsafe keys refused."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authgate import ConfigurationError, Key, KeySet
from authgate._codec import b64url_decode, is_strict_b64url
from authgate.keys import parse_jwks
from authgate.testing import SigningKey, b64url


def test_from_pem_public_key_and_certificate(rs256: SigningKey) -> None:
    """A SubjectPublicKeyInfo PEM loads; a private PEM is refused with a clear reason."""
    public = rs256.private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = KeySet.from_pem(pem, kid="pem-1")
    assert keys.kids() == {"pem-1"}
    private_pem = rs256.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigurationError, match="public key"):
        KeySet.from_pem(private_pem)
    with pytest.raises(ConfigurationError, match="cannot parse"):
        KeySet.from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_from_secret_requires_32_bytes() -> None:
    """HMAC secrets shorter than 256 bits are refused (RFC 7518 §3.2)."""
    assert len(KeySet.from_secret("s" * 32)) == 1
    with pytest.raises(ConfigurationError, match="32 bytes"):
        KeySet.from_secret("too-short")


def test_short_secret_is_no_candidate_for_longer_hashes() -> None:
    """A 32-byte secret suits HS256 but not HS512, whose key must be 64 bytes."""
    key = Key(b"k" * 32)
    assert key.suits("HS256")
    assert not key.suits("HS512")


def test_small_rsa_key_is_refused() -> None:
    """RSA keys under 2048 bits never enter a key set."""
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    with pytest.raises(ConfigurationError, match="2048"):
        Key(small)


BAD_JWKS: list[Any] = [
    pytest.param({"kty": "RSA", "n": "AQAB"}, "'e'", id="rsa-no-e"),
    pytest.param(
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "32 bytes", id="ec-short"
    ),
    pytest.param({"kty": "EC", "crv": "secp256k1", "x": "A", "y": "A"}, "curve", id="ec-curve"),
    pytest.param({"kty": "OKP", "crv": "X25519", "x": "A"}, "OKP curve", id="x25519"),
    pytest.param({"kty": "oct", "k": "a+b/"}, "base64url", id="oct-std-alphabet"),
    pytest.param(
        {"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)},
        "unusable",
        id="ec-not-on-curve",
    ),
    pytest.param({"kty": "PGP"}, "kty", id="unknown-kty"),
    pytest.param({"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"}, "use", id="use-enc"),
    pytest.param(
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "key_ops": ["encrypt"]}, "key_ops", id="key-ops"
    ),
    pytest.param({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "none"}, "alg", id="alg-none"),
    pytest.param({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": 5}, "kid", id="kid-int"),
    pytest.param("not an object", "object", id="not-object"),
]


@pytest.mark.parametrize(("jwk", "fragment"), BAD_JWKS)
def test_bad_jwks_are_refused_with_a_reason(jwk: Any, fragment: str) -> None:
    """Each unusable JWK raises ConfigurationError naming what is wrong."""
    with pytest.raises(ConfigurationError, match=fragment):
        KeySet.from_jwks({"keys": [jwk]})


def test_private_members_are_refused(rs256: SigningKey) -> None:
    """A JWK carrying a private exponent is refused: publish only the public key."""
    jwk = rs256.public_jwk() | {"d": b64url(b"\x01" * 256)}
    with pytest.raises(ConfigurationError, match="private"):
        KeySet.from_jwk(jwk)


def test_parse_jwks_skips_bad_keys_and_keeps_good_ones(rs256: SigningKey) -> None:
    """One broken key costs that key only; the reason names its index and kid."""
    doc = {"keys": [{"kty": "RSA", "kid": "broken", "n": "@@", "e": "AQAB"}, rs256.public_jwk()]}
    keys, skipped = parse_jwks(doc)
    assert [key.kid for key in keys] == ["rsa-1"]
    assert len(skipped) == 1
    assert "kid='broken'" in skipped[0]


@pytest.mark.parametrize(
    "doc",
    [[], {"keys": {}}, {"nokeys": []}, "[]", b"\xff"],
    ids=["list", "keys-object", "no-keys", "json-list", "bytes"],
)
def test_documents_that_are_not_jwks(doc: Any) -> None:
    """A document without a keys array is refused as a whole, as a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        KeySet.from_jwks(doc)


@pytest.mark.parametrize("text", [b"", "", b"{", b"\x00", "[1,"], ids=repr)
def test_jwks_text_that_is_not_json_is_a_configuration_error(text: str | bytes) -> None:
    """Found by the fuzzer: empty or broken JSON text raised a raw JSONDecodeError."""
    with pytest.raises(ConfigurationError, match="a JWKS must be a JSON object"):
        KeySet.from_jwks(text)


def test_from_jwks_accepts_json_text(rs256: SigningKey) -> None:
    """JWKS given as JSON text parses like the mapping."""
    import json

    assert KeySet.from_jwks(json.dumps({"keys": [rs256.public_jwk()]})).kids() == {"rsa-1"}


def test_key_repr_shows_no_material() -> None:
    """A key's repr names its type and kid, never its secret."""
    secret = b"super-secret-value-that-must-not-leak!"
    assert "super" not in repr(Key(secret, kid="k"))
    assert "super" not in repr(KeySet([Key(secret, kid="k")]))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("", True),
        ("AQ", True),
        ("AR", False),
        ("AQI", True),
        ("AQJ", False),
        ("A", False),
        ("AQ==", False),
        ("a+b", False),
    ],
)
def test_strict_base64url(text: str, ok: bool) -> None:
    """Only canonical unpadded base64url passes."""
    assert is_strict_b64url(text) is ok
    if ok:
        b64url_decode(text)
    else:
        with pytest.raises(ValueError, match="base64url"):
            b64url_decode(text)


def test_a_lone_key_without_kid_serves_any_kid(rs256: SigningKey) -> None:
    """A key configured on its own without a kid (from_pem, from_secret, from_jwk) verifies a
    token whatever kid it names, as PyJWT and jose do given one key; in a JWKS document, a key
    without kid serves only tokens without one."""
    from cryptography.hazmat.primitives import serialization

    from authgate import JWTVerifier, KeyNotFound
    from authgate.testing import TokenFactory

    jwk = rs256.public_jwk()
    jwk.pop("kid")
    pem = rs256.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    factory = TokenFactory(key=rs256)
    token = factory.mint("u", headers={"kid": "whatever-the-idp-says"})
    for lone in (KeySet.from_jwk(jwk), KeySet.from_pem(pem)):
        assert JWTVerifier(lone, algorithms=["RS256"]).verify(token)["sub"] == "u"
    secret = SigningKey("HS256", kid="k", private=b"s" * 32)
    hs_token = TokenFactory(key=secret).mint("h")  # its header names kid "k"
    assert (
        JWTVerifier(KeySet.from_secret(b"s" * 32), algorithms=["HS256"]).verify(hs_token)["sub"]
        == "h"
    )
    in_a_set = KeySet.from_jwks({"keys": [jwk]})
    with pytest.raises(KeyNotFound):
        JWTVerifier(in_a_set, algorithms=["RS256"]).verify(token)
    named = KeySet.from_pem(pem, kid="other")
    with pytest.raises(KeyNotFound):
        JWTVerifier(named, algorithms=["RS256"]).verify(token)
