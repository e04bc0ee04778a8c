"""The published Wycheproof vectors (C2SP/wycheproof) through our key and signature layer.

Each test group's public key is loaded the way authgate loads keys (JWK for EC and Ed25519,
PEM for RSA); each vector's signature is checked with the algorithm's signature check. A
'valid' vector must verify, an 'invalid' one must not; 'acceptable' may go either way. A
group whose key authgate refuses to load (a degenerate key) may only hold invalid vectors.
The files are copied unchanged into tests/data/wycheproof (Apache-2.0, see its LICENSE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate import ConfigurationError, Key, KeySet
from authgate.keys import key_from_jwk

DATA = Path(__file__).resolve().parent / "data" / "wycheproof"
FILES = {
    "ecdsa_secp256r1_sha256_p1363_test.json": "ES256",
    "ecdsa_secp384r1_sha384_p1363_test.json": "ES384",
    "ecdsa_secp521r1_sha512_p1363_test.json": "ES512",
    "ed25519_test.json": "EdDSA",
    "rsa_signature_2048_sha256_test.json": "RS256",
    "rsa_pss_2048_sha256_mgf1_32_test.json": "PS256",
    "hmac_sha256_test.json": "HS256",
}


def group_key(group: dict[str, Any], alg: str) -> Key:
    """The group's public key, loaded as authgate loads keys: its JWK where the file gives
    one, else its PEM."""
    if "publicKeyJwk" in group:
        return key_from_jwk(group["publicKeyJwk"])
    return KeySet.from_pem(group["publicKeyPem"]).keys[0]


def applicable(group: dict[str, Any], alg: str) -> bool:
    """The groups whose parameters JWS uses."""
    if alg == "HS256":
        return bool(group["tagSize"] == 256 and group["keySize"] >= 256)
    if alg == "PS256":
        return bool(group.get("mgfSha") == "SHA-256" and group.get("sLen") == 32)
    return True


@pytest.mark.parametrize(("name", "alg"), list(FILES.items()), ids=list(FILES.values()))
def test_wycheproof_vectors(name: str, alg: str) -> None:
    """Every applicable vector of the file gets the published result."""
    document = json.loads((DATA / name).read_text())
    checked = refused_groups = 0
    for group in document["testGroups"]:
        if not applicable(group, alg):
            continue
        tests = group["tests"]
        if alg == "HS256":
            for vector in tests:
                key = Key(bytes.fromhex(vector["key"]))
                got = key.check_for(alg)(bytes.fromhex(vector["msg"]), bytes.fromhex(vector["tag"]))
                assert got == (vector["result"] == "valid"), vector["tcId"]
                checked += 1
            continue
        try:
            key = group_key(group, alg)
        except ConfigurationError:
            refused_groups += 1
            assert all(v["result"] != "valid" for v in tests), "a usable key was refused"
            continue
        check = key.check_for(alg)
        for vector in tests:
            got = check(bytes.fromhex(vector["msg"]), bytes.fromhex(vector["sig"]))
            if vector["result"] == "valid":
                assert got, f"{name} #{vector['tcId']} ({vector['comment']}) should verify"
            elif vector["result"] == "invalid":
                assert not got, f"{name} #{vector['tcId']} ({vector['comment']}) must not verify"
            checked += 1
    assert checked >= 50
    assert refused_groups <= len(document["testGroups"]) // 2
