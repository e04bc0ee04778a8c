"""Verification keys: typed, bound to an algorithm family, never private.

A :class:`Key` holds public key material (or an HMAC secret) and knows which JWS algorithms it
may verify. A :class:`KeySet` is an immutable collection of keys, looked up by ``kid`` and
algorithm. An RSA, EC or OKP key can never serve as an HMAC secret: the family check happens
when candidates are chosen, before any crypto.
"""

from __future__ import annotations

import binascii
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ._codec import b64url_decode
from .errors import ConfigurationError

__all__ = [
    "ALGORITHMS",
    "MIN_RSA_BITS",
    "Key",
    "KeySet",
    "SignatureCheck",
]

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
"""RSA moduli outside 2048-8192 bits are refused: a huge modulus (or exponent) makes every
forged token cost milliseconds of CPU."""
MAX_RSA_EXPONENT: Final = 2**32 - 1
MAX_CANDIDATES: Final = 10
"""The most keys one token's signature is tried against (a kid-less token in a large set)."""
MAX_KEYS_PER_SET: Final = 100
"""The most usable keys kept from one JWKS document; the rest are skipped."""
MAX_KID_BYTES: Final = 256

SignatureCheck = Callable[[bytes, bytes], bool]
"""``check(signing_input, signature) -> bool``: one key bound to one algorithm."""


class _Alg(NamedTuple):
    kty: str
    hash_name: str
    crv: str | None = None
    pss: bool = False


ALGORITHMS: Final[Mapping[str, _Alg]] = {
    "HS256": _Alg("oct", "sha256"),
    "HS384": _Alg("oct", "sha384"),
    "HS512": _Alg("oct", "sha512"),
    "RS256": _Alg("RSA", "sha256"),
    "RS384": _Alg("RSA", "sha384"),
    "RS512": _Alg("RSA", "sha512"),
    "PS256": _Alg("RSA", "sha256", pss=True),
    "PS384": _Alg("RSA", "sha384", pss=True),
    "PS512": _Alg("RSA", "sha512", pss=True),
    "ES256": _Alg("EC", "sha256", crv="P-256"),
    "ES384": _Alg("EC", "sha384", crv="P-384"),
    "ES512": _Alg("EC", "sha512", crv="P-521"),
    "EdDSA": _Alg("OKP", "sha512", crv="Ed25519"),
    "Ed25519": _Alg("OKP", "sha512", crv="Ed25519"),  # RFC 9864's fully specified name
}
"""Every JWS algorithm authgate verifies. ``none`` is not one of them and never will be."""

SAME_ALGORITHM: Final[Mapping[str, str]] = {"EdDSA": "Ed25519", "Ed25519": "EdDSA"}
"""With an Ed25519 key, RFC 9864's ``Ed25519`` and the polymorphic ``EdDSA`` are one algorithm."""

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_CURVES: Final[Mapping[str, tuple[type[ec.EllipticCurve], int, int]]] = {
    # crv: (curve class, coordinate bytes, group order n)
    "P-256": (
        ec.SECP256R1,
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "P-384": (
        ec.SECP384R1,
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    ),
    "P-521": (
        ec.SECP521R1,
        66,
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
_MIN_SECRET_BYTES: Final = 32
_HASH_BYTES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class Key:
    """One verification key: public material or an HMAC secret, with its JWK metadata.

    Args:
        material: an RSA, EC (P-256/384/521) or Ed25519 public key, or HMAC secret bytes.
        kid: the key id, matched exactly against a token's ``kid``.
        alg: when set, the only algorithm this key verifies.
        use: when set, must be ``sig`` for the key to be used.
        allow_short_secret: accept an HMAC secret shorter than its hash (RFC 7518 §3.2 says
            it MUST NOT be): only for a provider that really issues short secrets.
    """

    __slots__ = ("_checks", "alg", "crv", "kid", "kty", "material", "short_ok", "use")

    def __init__(
        self,
        material: PublicKey | bytes,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        allow_short_secret: bool = False,
    ) -> None:
        self.short_ok = allow_short_secret is True
        if isinstance(material, bytes):
            _refuse_key_material_as_secret(material)
            if not material:
                raise ConfigurationError("an HMAC secret cannot be empty")
            if len(material) < _MIN_SECRET_BYTES and not self.short_ok:
                raise ConfigurationError(
                    f"an HMAC secret must be at least {_MIN_SECRET_BYTES} bytes (RFC 7518 §3.2:"
                    " at least the hash's size); use a longer secret, or pass"
                    " allow_short_secret=True for a provider that issues shorter ones"
                )
            self.kty, self.crv = "oct", None
        elif isinstance(material, rsa.RSAPublicKey):
            _check_rsa(material)
            self.kty, self.crv = "RSA", None
        elif isinstance(material, ec.EllipticCurvePublicKey):
            crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
                material.curve.name
            )
            if crv is None:
                raise ConfigurationError(f"unsupported EC curve {material.curve.name}")
            self.kty, self.crv = "EC", crv
        elif isinstance(material, ed25519.Ed25519PublicKey):
            _check_ed25519(material)
            self.kty, self.crv = "OKP", "Ed25519"
        else:
            raise ConfigurationError(
                "a key must be a public RSA, EC or Ed25519 key, or HMAC secret bytes"
            )
        if alg is not None and alg not in ALGORITHMS:
            raise ConfigurationError(f"unsupported key algorithm {alg!r}")
        if kid is not None and (not isinstance(kid, str) or len(kid.encode()) > MAX_KID_BYTES):
            raise ConfigurationError("kid must be a string of at most 256 bytes")
        self.material = material
        self.kid = kid
        self.alg = alg
        self.use = use
        self._checks: dict[str, SignatureCheck] = {}

    def __repr__(self) -> str:  # never shows key material
        return f"Key(kty={self.kty!r}, kid={self.kid!r}, alg={self.alg!r})"

    def suits(self, alg: str) -> bool:
        """Whether this key may verify ``alg``: family, curve, ``use`` and ``alg`` all agree.

        Args:
            alg: a JWS algorithm name.
        """
        spec = ALGORITHMS.get(alg)
        if spec is None or spec.kty != self.kty or (spec.crv is not None and spec.crv != self.crv):
            return False
        if self.use is not None and self.use != "sig":
            return False
        if self.alg is not None and self.alg != alg and SAME_ALGORITHM.get(self.alg) != alg:
            return False
        return not (
            isinstance(self.material, bytes)
            and not self.short_ok
            and len(self.material) < _HASH_BYTES[spec.hash_name]
        )

    def check_for(self, alg: str) -> SignatureCheck:
        """The signature check of this key for ``alg`` (built once, then reused).

        Args:
            alg: a JWS algorithm this key :meth:`suits`.
        """
        check = self._checks.get(alg)
        if check is None:
            check = self._checks[alg] = _build_check(self.material, ALGORITHMS[alg])
        return check


def _usable(keys: list[Key], skipped: list[str], *, strict: bool, what: str) -> list[Key]:
    """The rule of every configured key document, as of fetched ones: unusable entries are
    skipped, each reason logged once; none usable (or any skipped, ``strict``) is refused."""
    if skipped and (strict or not keys):
        raise ConfigurationError(f"{what} rejected: {skipped[0]}")
    if skipped:
        from ._log import warning

        for reason in sorted(set(skipped)):
            warning("authgate.keys", "skipped a %s of a configured key document: %s", what, reason)
    return keys


def _names_a_file(text: str) -> bool:
    """Whether ``text`` is the path of an existing file (a secret passed by its path)."""
    import os

    try:
        return os.path.isfile(text)
    except (OSError, ValueError):
        return False


def _refuse_key_material_as_secret(raw: bytes) -> None:
    """Refuse, as an HMAC secret, bytes that are a key or certificate: verifying HS256 with a
    public key as the secret lets anyone who holds the public key mint tokens (the algorithm
    confusion of CVE-2015-9235 and its kin)."""
    from cryptography import x509

    text = raw.strip()
    what = None
    if text.startswith(b"-----BEGIN"):
        what = "a PEM key or certificate"
    elif text.startswith((b"ssh-", b"ecdsa-sha2-")):
        what = "an OpenSSH public key"
    elif text.startswith(b"{"):
        try:
            import json

            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict) and ("kty" in document or "keys" in document):
            what = "a JWK or JWKS document"
    elif raw[:1] == b"\x30":  # a DER SEQUENCE: a key or certificate?
        loaders: tuple[Callable[[bytes], object], ...] = (
            serialization.load_der_public_key,
            lambda data: serialization.load_der_private_key(data, None),
            x509.load_der_x509_certificate,
        )
        for load in loaders:
            try:
                load(raw)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
            what = "a DER key or certificate"
            break
    if what is not None:
        raise ConfigurationError(
            f"the HMAC secret is {what}: pass public keys with KeySet.from_pem/from_jwk/"
            "from_jwks (a public key used as a shared secret lets anyone mint tokens)"
        )


def _check_rsa(key: rsa.RSAPublicKey) -> None:
    """Refuse RSA keys that are weak or that make verification expensive or meaningless."""
    numbers = key.public_numbers()
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise ConfigurationError(
            f"RSA keys must have a {MIN_RSA_BITS}-{MAX_RSA_BITS}-bit modulus, not {key.key_size}"
        )
    if numbers.n % 2 == 0:
        raise ConfigurationError("an RSA modulus must be odd")
    if not (3 <= numbers.e <= MAX_RSA_EXPONENT and numbers.e % 2 == 1):
        raise ConfigurationError("an RSA public exponent must be odd, from 3 to 2^32 - 1")
    if all(numbers.n % prime in powers for prime, powers in _ROCA_FINGERPRINT):
        raise ConfigurationError(
            "the RSA key has the ROCA fingerprint (CVE-2017-15361: an Infineon-generated key "
            "whose private key can be computed): have the issuer generate a new key"
        )


# ROCA (CVE-2017-15361): an Infineon-made modulus is 65537^a mod M for the primorial M, so
# modulo each small prime it lies in the subgroup 65537 generates; a sound modulus falls
# outside one of them with overwhelming odds (the test of the ROCA paper's detector: one
# modulo a prime, 38 primes, a false positive about once in 2^154).
_ROCA_PRIMES: Final = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
                       73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151,
                       157, 163, 167)  # fmt: skip
_ROCA_FINGERPRINT: Final = tuple(
    (prime, frozenset(pow(65537, k, prime) for k in range(prime))) for prime in _ROCA_PRIMES
)


_ED25519_P: Final = 2**255 - 19
# The y coordinates of Ed25519's small-order points (orders 1, 2, 4 and 8): such a public key
# verifies one fixed signature for every message. (x is determined by y up to its sign.)
_ED25519_SMALL_ORDER_Y: Final = frozenset(
    {
        0,
        1,
        _ED25519_P - 1,
        int.from_bytes(
            bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
            "little",
        ),
        int.from_bytes(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            "little",
        ),
    }
)


def _check_ed25519(key: ed25519.Ed25519PublicKey) -> None:
    """Refuse non-canonical and small-order Ed25519 public keys (RFC 8032 §5.1.3)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _ED25519_P:
        raise ConfigurationError("a non-canonical Ed25519 public key (y >= p) is refused")
    if y in _ED25519_SMALL_ORDER_Y:
        raise ConfigurationError("a small-order Ed25519 public key is refused")


def _build_check(material: PublicKey | bytes, spec: _Alg) -> SignatureCheck:
    if isinstance(material, bytes):
        secret, name = material, spec.hash_name
        digest, equal = hmac.digest, hmac.compare_digest

        def check_hmac(signing_input: bytes, signature: bytes) -> bool:
            return equal(digest(secret, signing_input, name), signature)

        return check_hmac

    hash_alg = _HASHES[spec.hash_name]()
    if isinstance(material, rsa.RSAPublicKey):
        rsa_key = material
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=padding.PSS.DIGEST_LENGTH)
            if spec.pss
            else padding.PKCS1v15()
        )
        size = (rsa_key.key_size + 7) // 8

        def check_rsa(signing_input: bytes, signature: bytes) -> bool:
            if len(signature) != size:
                return False
            try:
                rsa_key.verify(signature, signing_input, pad, hash_alg)
            except InvalidSignature:
                return False
            return True

        return check_rsa

    if isinstance(material, ec.EllipticCurvePublicKey):
        ec_key = material
        assert spec.crv is not None
        _, width, order = _CURVES[spec.crv]
        ecdsa = ec.ECDSA(hash_alg)
        from_bytes = int.from_bytes

        def check_ec(signing_input: bytes, signature: bytes) -> bool:
            # JWS carries raw R||S of exact length (RFC 7518 §3.4), never DER.
            if len(signature) != 2 * width:
                return False
            r = from_bytes(signature[:width], "big")
            s = from_bytes(signature[width:], "big")
            if not (0 < r < order and 0 < s < order):
                return False
            try:
                ec_key.verify(encode_dss_signature(r, s), signing_input, ecdsa)
            except InvalidSignature:
                return False
            return True

        return check_ec

    ed_key = material

    def check_ed25519(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            ed_key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return check_ed25519


class KeySet:
    """An immutable set of verification keys, the only trust source of a verifier.

    Args:
        keys: the keys; several may share a ``kid``.
        lone: the set is one key configured on its own: without a ``kid`` of its own, it is a
            candidate whatever ``kid`` a token names.
    """

    __slots__ = ("_by_kid", "_candidates", "_lone", "keys")

    def __init__(self, keys: Iterable[Key], *, lone: bool = False) -> None:
        self.keys: tuple[Key, ...] = tuple(keys)
        if len({key.kty == "oct" for key in self.keys}) > 1:
            raise ConfigurationError(
                "a key set cannot hold both HMAC secrets and public keys: give each its own "
                "verifier (a secret beside public keys invites algorithm confusion)"
            )
        # a single key configured on its own, without a kid (from_pem, from_secret, from_jwk):
        # the only trust there is, a candidate whatever kid a token names (as PyJWT and jose
        # do given one key); inside a JWKS document, kid matching stays exact.
        self._lone = lone and len(self.keys) == 1 and self.keys[0].kid is None
        by_kid: dict[str, list[Key]] = {}
        for key in self.keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(found) for kid, found in by_kid.items()}
        self._candidates: dict[tuple[str | None, str], tuple[SignatureCheck, ...]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet({len(self.keys)} keys, kids={sorted(self._by_kid)!r})"

    def kids(self) -> frozenset[str]:
        """The key ids in the set."""
        return frozenset(self._by_kid)

    def candidates(self, kid: str | None, alg: str) -> tuple[SignatureCheck, ...]:
        """The signature checks that may verify a token with this ``kid`` and ``alg``.

        With a ``kid`` only keys whose ``kid`` is exactly equal are candidates (but a lone key
        configured without a kid serves every kid); without one,
        every key that suits the algorithm is; at most :data:`MAX_CANDIDATES` of them, in the
        set's order (a forged kid-less token costs ten signature checks, not thousands).

        Args:
            kid: the token header's ``kid``, or ``None``.
            alg: the token header's ``alg`` (already allowlisted).
        """
        memo_key = (kid, alg)
        found = self._candidates.get(memo_key)
        if found is None:
            pool = self.keys if kid is None or self._lone else self._by_kid.get(kid, ())
            suited = [key for key in pool if key.suits(alg)][:MAX_CANDIDATES]
            found = tuple(key.check_for(alg) for key in suited)
            if len(self._candidates) < 1024:  # kid is attacker-chosen: bound the memo.
                self._candidates[memo_key] = found
        return found

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes, *, strict: bool = False) -> KeySet:
        """Build a set from a JWKS document, by the rule remote key sets follow: unusable keys
        (an X25519 key, a 1024-bit RSA key beside good ones) are skipped, each reason logged
        once on ``authgate.keys``, and only a document with no usable key is refused.

        Args:
            jwks: the document as a mapping or JSON text.
            strict: all or nothing: any unusable key raises :class:`ConfigurationError`.
        """
        return cls(_usable(*parse_jwks(jwks), strict=strict, what="JWKS key"))

    @classmethod
    def from_certificates(
        cls, document: Mapping[str, Any] | str | bytes, *, strict: bool = False
    ) -> KeySet:
        """Build a set from a certificate map (``{kid: PEM certificate}``, as Google and
        Firebase publish), by the rule of :meth:`from_jwks`: unusable entries are skipped and
        logged once, a map with no usable key is refused.

        Args:
            document: the map, or its JSON text.
            strict: all or nothing: any unusable entry raises :class:`ConfigurationError`.
        """
        return cls(_usable(*parse_certificates(document), strict=strict, what="certificate"))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> KeySet:
        """Build a set of one key from a JWK.

        Args:
            jwk: the key as a mapping.
        """
        return cls([key_from_jwk(jwk)], lone=True)

    @classmethod
    def from_pem(
        cls, pem: str | bytes, *, kid: str | None = None, alg: str | None = None
    ) -> KeySet:
        """Build a set of one key from a PEM public key or X.509 certificate.

        Args:
            pem: a ``PUBLIC KEY`` / ``RSA PUBLIC KEY`` block or a ``CERTIFICATE``.
            kid: the key id to give it.
            alg: restrict it to one algorithm.
        """
        data = pem.encode() if isinstance(pem, str) else pem
        if b"PRIVATE KEY" in data:
            raise ConfigurationError("pass the public key: authgate never holds private keys")
        try:
            if b"CERTIFICATE" in data:
                from cryptography import x509

                loaded: Any = x509.load_pem_x509_certificate(data).public_key()
            else:
                loaded = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError("cannot parse the PEM public key") from exc
        return cls([Key(loaded, kid=kid, alg=alg)], lone=True)

    @classmethod
    def from_secret(
        cls,
        secret: str | bytes,
        *,
        kid: str | None = None,
        alg: str | None = None,
        allow_short_secret: bool = False,
    ) -> KeySet:
        """Build a set of one HMAC secret: at least as long as its hash (32 bytes for HS256,
        48 for HS384, 64 for HS512), and never key material (a PEM or DER key or certificate,
        a JWK or JWKS text), which would let anyone holding the public key mint tokens.

        Args:
            secret: the shared secret; ``str`` is encoded as UTF-8.
            kid: the key id to give it.
            alg: restrict it to one HS algorithm.
            allow_short_secret: accept a secret shorter than its hash (see :class:`Key`).
        """
        if not isinstance(secret, str | bytes | bytearray):
            raise ConfigurationError("the HMAC secret must be str or bytes")
        if isinstance(secret, str) and len(secret) < 4096 and _names_a_file(secret):
            raise ConfigurationError(
                "the HMAC secret names a file: pass the secret itself (read the file first), "
                "never its path"
            )
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        key = Key(raw, kid=kid, alg=alg, allow_short_secret=allow_short_secret)
        return cls([key], lone=True)


def _coordinate(jwk: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"member {name!r} is missing or not a string")
    try:
        raw = b64url_decode(value)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"member {name!r} is not base64url") from exc
    if size is not None and len(raw) != size:
        raise ValueError(f"member {name!r} must be {size} bytes")
    return raw


def key_from_jwk(jwk: Mapping[str, Any], *, allow_secret: bool = True) -> Key:
    """Parse one JWK into a :class:`Key`; raise :class:`ConfigurationError` if unusable.

    Args:
        jwk: the key as a mapping.
        allow_secret: whether ``oct`` keys are acceptable (not from a remote JWKS).
    """
    try:
        return _key_from_jwk(jwk, allow_secret)
    except ConfigurationError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(f"unusable JWK: {exc}") from exc


def _key_from_jwk(jwk: Mapping[str, Any], allow_secret: bool) -> Key:
    if not isinstance(jwk, Mapping):
        raise ValueError("a JWK must be a JSON object")
    kty, kid, alg, use = jwk.get("kty"), jwk.get("kid"), jwk.get("alg"), jwk.get("use")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid must be a string")
    if alg is not None and alg not in ALGORITHMS:
        raise ValueError(f"unsupported alg {alg!r}")
    if use is not None and use != "sig":
        raise ValueError(f"use {use!r} is not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise ValueError("key_ops does not allow 'verify'")
    if kty != "oct" and _PRIVATE_MEMBERS.intersection(jwk):
        raise ValueError("private key members present: publish only the public key")
    material: PublicKey | bytes
    if kty == "RSA":
        n = int.from_bytes(_coordinate(jwk, "n"), "big")
        e = int.from_bytes(_coordinate(jwk, "e"), "big")
        if n.bit_length() < MIN_RSA_BITS:
            raise ValueError(f"RSA modulus shorter than {MIN_RSA_BITS} bits")
        material = rsa.RSAPublicNumbers(e, n).public_key()
    elif kty == "EC":
        crv = jwk.get("crv")
        if not isinstance(crv, str) or crv not in _CURVES:
            raise ValueError(f"unsupported curve {crv!r}")
        curve, width, _ = _CURVES[crv]
        point = b"\x04" + _coordinate(jwk, "x", width) + _coordinate(jwk, "y", width)
        material = ec.EllipticCurvePublicKey.from_encoded_point(curve(), point)
    elif kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise ValueError(f"unsupported OKP curve {jwk.get('crv')!r}")
        material = ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", 32))
    elif kty == "oct":
        if not allow_secret:
            raise ValueError("a symmetric key in a published JWKS is a leaked secret")
        material = _coordinate(jwk, "k")
    else:
        raise ValueError(f"unsupported kty {kty!r}")
    return Key(material, kid=kid, alg=alg, use=use)


def parse_jwks(
    jwks: Mapping[str, Any] | str | bytes, *, allow_secret: bool = True
) -> tuple[list[Key], list[str]]:
    """Parse a JWKS document, skipping unusable keys.

    Returns the usable keys (at most :data:`MAX_KEYS_PER_SET`) and, for each skipped key, the
    reason (never key material). A document that is not a JWKS at all raises
    ``ConfigurationError``.

    Args:
        jwks: the document as a mapping or JSON text.
        allow_secret: whether ``oct`` keys are acceptable.
    """
    if isinstance(jwks, str | bytes):
        from ._json import loads_strict

        try:
            jwks = loads_strict(jwks)
        except ValueError:  # found by fuzzing: empty or non-JSON text raised JSONDecodeError
            raise ConfigurationError("a JWKS must be a JSON object with a 'keys' array") from None
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ConfigurationError("a JWKS must be a JSON object with a 'keys' array")
    keys: list[Key] = []
    skipped: list[str] = []
    entries: Sequence[Any] = jwks["keys"]
    for jwk in entries:
        if len(keys) >= MAX_KEYS_PER_SET:
            skipped.append(f"more than {MAX_KEYS_PER_SET} usable keys")
            continue
        try:
            keys.append(key_from_jwk(jwk, allow_secret=allow_secret))
        except ConfigurationError as exc:
            kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
            skipped.append(f"kid={str(kid)[:40]!r}: {exc.message}" if kid else exc.message)
    return keys, skipped


def parse_certificates(
    document: Mapping[str, Any] | str | bytes,
) -> tuple[list[Key], list[str]]:
    """Parse a certificate map (``{kid: PEM certificate}``, Google's and Firebase's format),
    skipping unusable entries: the usable keys (at most :data:`MAX_KEYS_PER_SET`) and a reason
    for each entry skipped. A document that is not such a map raises ``ConfigurationError``.

    Args:
        document: the map, or its JSON text.
    """
    from cryptography import x509

    if isinstance(document, str | bytes):
        from ._json import loads_strict

        try:
            document = loads_strict(document)
        except ValueError:
            raise ConfigurationError("a certificate map must be a JSON object") from None
    if not isinstance(document, Mapping) or not document:
        raise ConfigurationError("a certificate map must be a JSON object of kid -> PEM")
    keys: list[Key] = []
    skipped: list[str] = []
    for kid, pem in document.items():
        label = f"kid={str(kid)[:40]!r}"
        if len(keys) >= MAX_KEYS_PER_SET:
            skipped.append(f"more than {MAX_KEYS_PER_SET} usable keys")
            continue
        if not isinstance(kid, str) or not isinstance(pem, str):
            skipped.append(f"{label}: not a PEM certificate string")
            continue
        try:
            public = x509.load_pem_x509_certificate(pem.encode()).public_key()
            if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                raise ConfigurationError("not an RSA or EC key")
            keys.append(Key(public, kid=kid))
        except ConfigurationError as exc:
            skipped.append(f"{label}: {exc.message}")
        except (ValueError, TypeError, UnsupportedAlgorithm):
            skipped.append(f"{label}: not a PEM certificate")
    return keys, skipped
