"""Signing keys and token factories for tests: keys live in memory only, never persisted."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from ..keys import ALGORITHMS, KeySet

__all__ = ["DPoPClient", "SigningKey", "TokenFactory", "b64url"]

_CURVE_FOR: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_PYJWT_NAMES = {"Ed25519": "EdDSA"}


def b64url(data: bytes | str) -> str:
    """Unpadded base64url of ``data`` (text is UTF-8 encoded).

    Args:
        data: what to encode.
    """
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _generate(alg: str) -> Any:
    family = ALGORITHMS[alg].kty
    if family == "oct":
        return os.urandom(_SECRET_BYTES[alg])
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family == "EC":
        return ec.generate_private_key(_CURVE_FOR[alg]())
    return ed25519.Ed25519PrivateKey.generate()


class SigningKey:
    """A private signing key for one algorithm, generated in memory.

    Args:
        alg: a supported JWS algorithm.
        kid: the key id; a random one when omitted.
        private: an existing private key (or HMAC secret) to use instead of generating one.
    """

    def __init__(self, alg: str = "RS256", *, kid: str | None = None, private: Any = None) -> None:
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r}")
        self.alg = alg
        self.kid = kid if kid is not None else uuid.uuid4().hex[:16]
        self.private: Any = private if private is not None else _generate(alg)
        # PyJWT signs RFC 9864's "Ed25519" as "EdDSA": the same algorithm for an Ed25519 key
        self._algorithm = get_default_algorithms()[_PYJWT_NAMES.get(alg, alg)]

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"

    @property
    def secret(self) -> bytes:
        """The HMAC secret (HS* keys only)."""
        if not isinstance(self.private, bytes):
            raise TypeError("only HS* keys have a secret")
        return self.private

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (for HS* keys, the secret as an ``oct`` JWK)."""
        if isinstance(self.private, bytes):
            jwk: dict[str, Any] = {"kty": "oct", "k": b64url(self.private)}
        else:
            jwk = json.loads(self._algorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def keyset(self) -> KeySet:
        """A :class:`KeySet` holding this key's public half."""
        return KeySet.from_jwks({"keys": [self.public_jwk()]})

    def sign(self, signing_input: bytes) -> bytes:
        """Sign ``signing_input`` (raw R||S for ECDSA, as JWS requires).

        Args:
            signing_input: ``header.payload`` as ASCII bytes.
        """
        signature: bytes = self._algorithm.sign(signing_input, self.private)
        return signature


class TokenFactory:
    """Mint signed JWTs with sensible claims, or sign anything for negative tests.

    Args:
        alg: the algorithm of the generated key (ignored when ``key`` is given).
        key: the signing key; generated when omitted.
        issuer: the ``iss`` of minted tokens, when set.
        audience: the ``aud`` of minted tokens, when set.
        ttl: seconds from ``iat`` to ``exp``.
        clock: returns the current time in seconds since the epoch.
    """

    def __init__(
        self,
        alg: str = "RS256",
        *,
        key: SigningKey | None = None,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key or SigningKey(alg)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.clock = clock
        self.retired: list[SigningKey] = []

    @property
    def alg(self) -> str:
        """The signing algorithm."""
        return self.key.alg

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on; the old one moves to ``retired``."""
        self.retired.append(self.key)
        self.key = SigningKey(self.key.alg)
        return self.key

    def jwks(self, *, include_retired: bool = True) -> dict[str, Any]:
        """The public JWKS: the current key, and the retired ones unless told otherwise.

        Args:
            include_retired: publish retired keys too (tokens they signed stay valid).
        """
        keys = [self.key, *(self.retired if include_retired else [])]
        return {"keys": [key.public_jwk() for key in keys]}

    def keyset(self) -> KeySet:
        """A static :class:`KeySet` of :meth:`jwks`."""
        return KeySet.from_jwks(self.jwks())

    def claims(self, subject: str = "user-1", **extra: Any) -> dict[str, Any]:
        """The claims a minted token carries: ``sub``, ``iat``, ``exp``, ``iss``, ``aud``, ``jti``.

        Args:
            subject: the ``sub`` claim.
            extra: claims to add or override; a value of ``None`` removes the claim.
        """
        now = int(self.clock())
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": now,
            "exp": now + int(self.ttl),
            "jti": uuid.uuid4().hex,
        }
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        claims.update(extra)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        subject: str = "user-1",
        *,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        """A signed compact JWT for ``subject``.

        Args:
            subject: the ``sub`` claim.
            headers: header members to add or override (``None`` values remove one).
            key: sign with this key instead of the current one.
            claims: claims to add or override (``None`` values remove one).
        """
        signer = key or self.key
        header: dict[str, Any] = {"alg": signer.alg, "typ": "JWT", "kid": signer.kid}
        header.update(headers or {})
        header = {name: value for name, value in header.items() if value is not None}
        return self.sign(json.dumps(header), json.dumps(self.claims(subject, **claims)), signer)

    def sign(self, header: str | bytes, payload: str | bytes, key: SigningKey | None = None) -> str:
        """Sign a raw header and payload, exactly as given (for negative tests).

        Args:
            header: the header JSON text (any bytes at all).
            payload: the payload (any bytes at all).
            key: sign with this key instead of the current one.
        """
        signing_input = f"{b64url(header)}.{b64url(payload)}"
        signature = (key or self.key).sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"


class DPoPClient:
    """A DPoP client (RFC 9449): its key pair, the ``cnf`` to bind tokens to it, and fresh
    proofs for requests, to test an app that accepts DPoP-bound tokens.

    Example::

        client = DPoPClient()
        token = tokens.mint("alice", cnf=client.cnf)
        headers = client.headers(token, "GET", "http://testserver/me")

    Args:
        alg: the proof algorithm (asymmetric).
        clock: returns the current time in seconds since the epoch.
    """

    def __init__(self, alg: str = "ES256", *, clock: Callable[[], float] = time.time) -> None:
        if ALGORITHMS[alg].kty == "oct":
            raise ValueError("a DPoP proof is signed with an asymmetric key")
        self.key = SigningKey(alg)
        self.clock = clock

    @property
    def jwk(self) -> dict[str, Any]:
        """The public key, as the proof's header carries it."""
        jwk = self.key.public_jwk()
        for member in ("kid", "alg", "use"):
            jwk.pop(member, None)
        return jwk

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint of :attr:`jwk`."""
        from ..dpop import jwk_thumbprint

        return jwk_thumbprint(self.jwk)

    @property
    def cnf(self) -> dict[str, str]:
        """The ``cnf`` claim binding a token to this client: ``{"jkt": ...}``."""
        return {"jkt": self.jkt}

    def proof(
        self,
        method: str,
        uri: str,
        token: str | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A fresh proof for one request.

        Args:
            method: the request's method (``htm``).
            uri: the request's URI (``htu``; query and fragment are not part of it).
            token: the access token (its hash is ``ath``).
            headers: header members to add or override (``None`` values remove one).
            claims: claims to add or override (``None`` values remove one), e.g. ``nonce``.
        """
        header: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.key.alg, "jwk": self.jwk}
        header.update(headers or {})
        body: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": uri,
            "iat": int(self.clock()),
        }
        if token is not None:
            body["ath"] = b64url(hashlib.sha256(token.encode("ascii")).digest())
        body.update(claims)
        header = {k: v for k, v in header.items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None}
        signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(body))}"
        signature = self.key.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"

    def headers(self, token: str, method: str, uri: str, **claims: Any) -> dict[str, str]:
        """``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for one request.

        Args:
            token: the DPoP-bound access token.
            method: the request's method.
            uri: the request's URI.
            claims: proof claims to add or override (e.g. ``nonce``).
        """
        return {
            "authorization": f"DPoP {token}",
            "dpop": self.proof(method, uri, token, **claims),
        }
