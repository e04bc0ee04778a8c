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

from .test_curves import probably_prime


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


def _material(rs256: SigningKey, ec256: SigningKey) -> dict[str, bytes]:
    """Key material of every shape someone might paste where a secret belongs."""
    import json
    import tempfile
    from pathlib import Path

    from cryptography import x509

    from authgate.testing.pki import PrivateCA

    public = rs256.private.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    with tempfile.TemporaryDirectory() as folder:
        certificate = PrivateCA(Path(folder)).ca_cert.read_bytes()

    der_certificate = x509.load_pem_x509_certificate(certificate).public_bytes(
        serialization.Encoding.DER
    )
    return {
        "pem-public": public.public_bytes(serialization.Encoding.PEM, spki),
        "pem-private": rs256.private.private_bytes(serialization.Encoding.PEM, pkcs8, none),
        "pem-certificate": certificate,
        "der-public": public.public_bytes(serialization.Encoding.DER, spki),
        "der-private-ec": ec256.private.private_bytes(serialization.Encoding.DER, pkcs8, none),
        "der-certificate": der_certificate,
        "openssh-public": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": json.dumps(rs256.public_jwk()).encode(),
        "jwks": json.dumps({"keys": [rs256.public_jwk()]}).encode(),
    }


MATERIAL = [
    "pem-public",
    "pem-private",
    "pem-certificate",
    "der-public",
    "der-private-ec",
    "der-certificate",
    "openssh-public",
    "jwk",
    "jwks",
]


@pytest.mark.parametrize("kind", MATERIAL)
def test_key_material_is_never_an_hmac_secret(
    kind: str, rs256: SigningKey, signing_keys: dict[str, SigningKey]
) -> None:
    """A key or certificate given as an HMAC secret is refused, with a message naming what
    it is and what to use instead (a public key as a shared secret lets anyone mint tokens)."""
    material = _material(rs256, signing_keys["ES256"])[kind]
    with pytest.raises(ConfigurationError, match="the HMAC secret is a") as caught:
        KeySet.from_secret(material)
    assert "from_pem" in caught.value.message
    if not kind.startswith("der-"):  # text formats, given as text too
        with pytest.raises(ConfigurationError, match="the HMAC secret is a"):
            KeySet.from_secret(material.decode())
    with pytest.raises(ConfigurationError, match="the HMAC secret is a"):
        Key(material)  # every path that builds an HMAC key


@pytest.mark.parametrize(
    ("alg", "size"), [("HS256", 31), ("HS384", 47), ("HS512", 63)], ids=["256", "384", "512"]
)
def test_a_secret_shorter_than_its_hash_is_refused_at_construction(alg: str, size: int) -> None:
    """RFC 7518 §3.2: the secret is at least the hash's size; one byte short is refused when
    the verifier is built, not when the first token arrives."""
    from authgate import JWTVerifier

    with pytest.raises(ConfigurationError):
        JWTVerifier(KeySet.from_secret(b"k" * size, alg=alg), algorithms=[alg])
    JWTVerifier(KeySet.from_secret(b"k" * (size + 1), alg=alg), algorithms=[alg])


def test_a_short_secret_needs_the_explicit_opt_out() -> None:
    """allow_short_secret=True admits a provider's shorter secret, and tokens it signs
    verify; without it the same secret is refused, saying how to opt out."""
    import hashlib
    import hmac
    import json

    from authgate import JWTVerifier

    secret = b"sixteen-byte-key"
    with pytest.raises(ConfigurationError, match="allow_short_secret=True"):
        KeySet.from_secret(secret)
    verifier = JWTVerifier(
        KeySet.from_secret(secret, allow_short_secret=True),
        algorithms=["HS512"],
        required_claims=(),
    )
    signing_input = b64url(json.dumps({"alg": "HS512"})) + "." + b64url(json.dumps({"sub": "u"}))
    signature = hmac.digest(secret, signing_input.encode(), hashlib.sha512)
    assert verifier.verify(signing_input + "." + b64url(signature))["sub"] == "u"
    with pytest.raises(ConfigurationError, match="empty"):
        KeySet.from_secret(b"", allow_short_secret=True)


def roca_modulus(bits: int = 2048) -> int:
    """A modulus built the way ROCA-affected Infineon chips built theirs: each prime is
    k * M + (65537^a mod M) for the primorial M of the primes below 702."""
    import random

    rng = random.Random(15361)
    primorial = 1
    for candidate in range(2, 702):
        if all(candidate % p for p in range(2, int(candidate**0.5) + 1)):
            primorial *= candidate
    half = bits // 2

    def prime() -> int:
        while True:
            k = rng.getrandbits(half - primorial.bit_length())
            p = k * primorial + pow(65537, rng.getrandbits(64), primorial)
            if p.bit_length() == half and probably_prime(p):
                return p

    while True:
        n = prime() * prime()
        if n.bit_length() == bits:
            return n


def test_a_roca_vulnerable_rsa_key_is_refused(rs256: SigningKey) -> None:
    """An RSA modulus with the ROCA fingerprint (CVE-2017-15361) is refused when loaded, from
    a JWK and from a public key object; a sound key of the same size loads."""
    n = roca_modulus()
    public = rsa.RSAPublicNumbers(65537, n).public_key()
    with pytest.raises(ConfigurationError, match="ROCA"):
        Key(public)
    jwk = {"kty": "RSA", "n": b64url(n.to_bytes(256, "big")), "e": "AQAB", "kid": "roca"}
    with pytest.raises(ConfigurationError, match="ROCA"):
        KeySet.from_jwk(jwk)
    assert len(KeySet.from_jwk(rs256.public_jwk())) == 1


def test_a_key_set_never_mixes_secrets_and_public_keys(rs256: SigningKey) -> None:
    """A JWKS holding an oct secret beside an RSA key is refused, saying why."""
    secret = {"kty": "oct", "k": b64url(b"s" * 32), "kid": "hmac"}
    with pytest.raises(ConfigurationError, match="both HMAC secrets and public keys"):
        KeySet.from_jwks({"keys": [rs256.public_jwk(), secret]})
    assert len(KeySet.from_jwks({"keys": [secret]})) == 1


def test_a_static_jwks_skips_unusable_keys_as_a_fetched_one_does(
    rs256: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """A published JWKS with an X25519 key and a 1024-bit RSA key beside a good one loads the
    good one, each skip logged once (it failed whole before, while the same document from a
    URL worked); strict=True is all or nothing; no usable key at all is refused."""
    import logging

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 (the weak key)
    numbers = weak.public_numbers()
    document = {
        "keys": [
            {"kty": "OKP", "crv": "X25519", "x": b64url(b"x" * 32), "kid": "paypal-x25519"},
            {"kty": "RSA", "n": b64url(numbers.n.to_bytes(128, "big")), "e": "AQAB", "kid": "old"},
            rs256.public_jwk(),
        ]
    }
    with caplog.at_level(logging.WARNING, logger="authgate.keys"):
        keys = KeySet.from_jwks(document)
    assert keys.kids() == {rs256.kid}
    skipped = [
        r.getMessage() for r in caplog.records if "of a configured key document" in r.getMessage()
    ]
    assert len(skipped) == 2
    assert any("paypal-x25519" in line for line in skipped)
    assert any("'old'" in line for line in skipped)
    with pytest.raises(ConfigurationError, match="JWKS key rejected"):
        KeySet.from_jwks(document, strict=True)
    with pytest.raises(ConfigurationError, match="JWKS key rejected"):
        KeySet.from_jwks({"keys": document["keys"][:2]})
