"""DPoP for resource servers (RFC 9449 §4.3, §7): a token bound to a client key is accepted only
with a fresh proof that the client holds that key.

A request carries ``Authorization: DPoP <token>`` and exactly one ``DPoP: <proof>`` header.
The token is verified (and cached) as any other; its claims, or its introspection answer,
carry ``cnf.jkt``, the RFC 7638 thumbprint of the client's public key. The proof is checked
on every request, never cached:

- a compact JWS with ``typ: dpop+jwt``, an asymmetric ``alg`` from :attr:`DPoP.algorithms`,
  and the client's public ``jwk`` in its header (no private members), whose signature that
  key verifies, and whose thumbprint is the token's ``cnf.jkt``;
- ``htm`` is the request's method and ``htu`` its URI without query or fragment (compared
  after RFC 3986 §6.2.2/§6.2.3 normalisation), the origin and prefix being
  :attr:`DPoP.base_url` behind a proxy;
- ``iat`` within :attr:`DPoP.max_age` (and :attr:`DPoP.leeway` ahead), ``ath`` the
  base64url SHA-256 of the token, ``jti`` never seen before within that window (per process,
  and fleet-wide through the shared store when the authenticator has one); with
  :attr:`DPoP.nonce_secret`, a ``nonce`` this server issued (``DPoP-Nonce``).

A bound token sent as ``Bearer`` is refused (:class:`~authgate.UnverifiedBinding`), whatever
other headers come with it; a token without ``cnf.jkt`` under the ``DPoP`` scheme is refused.
Proofs are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from ._cache import Expiring, Memo
from ._codec import TO_STD, b64url_decode, canonical_tail
from ._config import leeway_seconds, positive, size
from ._json import as_number, loads_strict
from .errors import ConfigurationError, InvalidDPoPProof, UseDPoPNonce
from .extract import Proof
from .keys import ALGORITHMS, SignatureCheck, key_from_jwk

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_DPOP",
    "DPoP",
    "Proof",
    "ProofChecker",
    "jwk_thumbprint",
    "normalized_uri",
    "request_uri_asgi",
    "request_uri_wsgi",
]

DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "EdDSA")
"""The proof algorithms accepted by default: every asymmetric one authgate verifies."""

MAX_PROOF_BYTES: Final = 8192
_HEADER_MEMO: Final = 256
_a2b = binascii.a2b_base64
_COMPACT_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
"""A compact JWS's characters: base64url and the dots."""
_THUMBPRINT_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED: Final = "-._~"
_PATH_SAFE: Final = "/:@!$&'()*+,;=%" + _UNRESERVED


@dataclass(frozen=True, slots=True, kw_only=True)
class DPoP:
    """How DPoP proofs are checked: pass as ``Authenticator(dpop=...)`` (on by default;
    ``dpop=None`` refuses every DPoP request and every bound token).

    Args:
        algorithms: the proof algorithms accepted (asymmetric only); also the ``algs`` of
            the ``WWW-Authenticate: DPoP`` challenge.
        max_age: how old a proof's ``iat`` may be, in seconds.
        leeway: how far ahead of our clock a proof's ``iat`` may be (at most 300 s).
        base_url: the external origin, and the path prefix a proxy strips, that clients
            address this app by (``https://api.example.com/v1``), put before the request's
            path (ASGI's ``raw_path``, WSGI's ``PATH_INFO``: ``base_url`` then includes any
            ``SCRIPT_NAME``); unset, the URI is the request's own (ASGI ``scheme``, ``Host`` and
            ``raw_path``; WSGI's ``wsgi.url_scheme``, ``HTTP_HOST``, ``SCRIPT_NAME`` and
            ``PATH_INFO``), whose host the client chooses: set it where one token is good at
            several servers, or a proof made for another of them passes here with its ``Host``.
        trust_forwarded: read the scheme and host from ``X-Forwarded-Proto`` and
            ``X-Forwarded-Host`` (only behind a proxy that sets them and strips clients'
            own; off by default, since a client may send any).
        replay_cache_size: the most proof ids remembered per process (within ``max_age``).
            When more proofs arrive within the window, the oldest ids are dropped and proofs
            as old as they are refused (a fresh proof still passes): a proof is never
            accepted twice.
        nonce_secret: with 32 bytes or more, proofs must carry a ``nonce`` this server
            issued (RFC 9449 §8): a 401 ``use_dpop_nonce`` answers with a fresh one in
            ``DPoP-Nonce``; every worker sharing the secret accepts the others' nonces.
        nonce_lifetime: how long a nonce is accepted, in seconds.
    """

    algorithms: Sequence[str] = DEFAULT_ALGORITHMS
    max_age: float = 300.0
    leeway: float = 5.0
    base_url: str | None = None
    trust_forwarded: bool = False
    replay_cache_size: int = 100_000
    nonce_secret: bytes | None = field(default=None, repr=False)
    nonce_lifetime: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.algorithms, str):
            raise ConfigurationError("DPoP.algorithms must be a list of names, not one string")
        algorithms = tuple(self.algorithms)
        if not algorithms:
            raise ConfigurationError("DPoP.algorithms needs at least one algorithm")
        for alg in algorithms:
            spec = ALGORITHMS.get(alg)
            if spec is None:
                raise ConfigurationError(f"DPoP.algorithms: unsupported algorithm {alg!r}")
            if spec.kty == "oct":
                raise ConfigurationError(
                    f"DPoP.algorithms: {alg} is symmetric; a proof must be signed with the "
                    "client's private key (RFC 9449 §4.2)"
                )
        object.__setattr__(self, "algorithms", algorithms)
        positive(self.max_age, "DPoP.max_age")
        leeway_seconds(self.leeway, "DPoP.leeway")
        size(self.replay_cache_size, "DPoP.replay_cache_size", minimum=1)
        positive(self.nonce_lifetime, "DPoP.nonce_lifetime")
        if not isinstance(self.trust_forwarded, bool):
            raise ConfigurationError("DPoP.trust_forwarded must be True or False")
        if self.trust_forwarded and self.base_url is not None:
            raise ConfigurationError(
                "DPoP takes base_url (a fixed origin) or trust_forwarded (the proxy's headers), "
                "not both"
            )
        if self.base_url is not None:
            parts = urlsplit(self.base_url) if isinstance(self.base_url, str) else None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.query
                or parts.fragment
                or parts.username is not None
            ):
                raise ConfigurationError(
                    "DPoP.base_url must be an http(s) origin with an optional path prefix, "
                    "e.g. 'https://api.example.com/v1'"
                )
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.nonce_secret is not None and (
            not isinstance(self.nonce_secret, bytes) or len(self.nonce_secret) < 32
        ):
            raise ConfigurationError("DPoP.nonce_secret must be at least 32 random bytes")


DEFAULT_DPOP: Final = DPoP()
"""An :class:`~authgate.Authenticator`'s DPoP settings by default."""


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding.

    Args:
        jwk: an EC, RSA or OKP public key.
    """
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ValueError("not a public EC, RSA or OKP JWK")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_PERCENT: Final = re.compile(r"%([0-9A-Fa-f]{2})")


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return (
        char
        if char.isascii() and (char.isalnum() or char in _UNRESERVED)
        else match.group(0).upper()
    )


def _path(path: str) -> str:
    """RFC 3986 §6.2.2: percent-encodings of unreserved characters decoded, the others
    upper-cased, other characters percent-encoded as UTF-8; dot segments removed (§5.2.4)."""
    path = _PERCENT.sub(_percent, quote(path, safe=_PATH_SAFE))
    if "." not in path:
        return path
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = path.endswith(("/.", "/.."))
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def normalized_uri(uri: str) -> str | None:
    """``uri`` as RFC 3986 §6.2.2 and §6.2.3 compare it (case, percent-encoding, default port,
    empty path), query and fragment dropped; ``None`` when it is no http(s) URI.

    Args:
        uri: an absolute http(s) URI.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{_path(parts.path) or '/'}"


def _origin(scheme: str, host: str) -> str:
    return f"{scheme}://{host}"


_FORWARDED: Final = frozenset({b"host", b"x-forwarded-proto", b"x-forwarded-host"})
_HTTP_OF: Final = {"ws": "http", "wss": "https"}


def request_uri_asgi(scope: Mapping[str, Any], dpop: DPoP, host: bytes | None = None) -> str:
    """The URI an ASGI request addressed, as a proof's ``htu`` names it.

    Args:
        scope: the ASGI scope.
        dpop: the settings (``base_url``, ``trust_forwarded``).
        host: the request's (last) ``Host`` header when the caller has read the headers
            already; ``None``: read here.
    """
    raw = scope.get("raw_path")
    if type(raw) is bytes and raw.startswith(b"/"):  # as the client sent it, before decoding
        path = raw.partition(b"?")[0].decode("utf-8", "replace")  # raw non-ASCII: a client's UTF-8
    else:
        path = str(scope.get("root_path") or "") + str(scope.get("path") or "/")
    if dpop.base_url is not None:
        return dpop.base_url + path
    scheme = str(scope.get("scheme") or "http")
    scheme = _HTTP_OF.get(scheme, scheme)
    if dpop.trust_forwarded:
        forwarded: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or ():
            if name in _FORWARDED and type(value) is bytes:
                forwarded[name] = value
        scheme = forwarded.get(b"x-forwarded-proto", scheme.encode()).decode("latin-1")
        host = forwarded.get(b"x-forwarded-host", forwarded.get(b"host"))
    elif host is None:  # the last of each header, as the other servers' headers read
        for name, value in scope.get("headers") or ():
            if name == b"host" and type(value) is bytes:
                host = value
    if host:
        return f"{scheme}://{host.decode('latin-1')}{path}"
    server = scope.get("server")
    return f"{scheme}://{server[0]}:{server[1]}{path}" if server else f"{scheme}://localhost{path}"


def request_uri_wsgi(environ: Mapping[str, Any], dpop: DPoP) -> str:
    """The URI a WSGI request addressed, as a proof's ``htu`` names it.

    Args:
        environ: the WSGI environ.
        dpop: the settings (``base_url``, ``trust_forwarded``).
    """
    path = _as_sent(environ.get("PATH_INFO")) or "/"
    if dpop.base_url is not None:
        return dpop.base_url + path
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    host = str(environ.get("HTTP_HOST") or "")
    if dpop.trust_forwarded:
        scheme = str(environ.get("HTTP_X_FORWARDED_PROTO") or scheme)
        host = str(environ.get("HTTP_X_FORWARDED_HOST") or host)
    if not host:
        host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return _origin(scheme, host) + _as_sent(environ.get("SCRIPT_NAME")) + path


def _as_sent(value: Any) -> str:
    """A WSGI path as the client sent it: WSGI decodes the bytes as latin-1, a client's path is
    UTF-8 (percent-encoded when normalised)."""
    return str(value or "").encode("latin-1", "replace").decode("utf-8", "replace")


class ProofChecker:
    """One authenticator's proof checks and replay memory.

    Args:
        settings: the :class:`DPoP` settings.
        clock: the authenticator's clock.
    """

    def __init__(self, settings: DPoP, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self.window = settings.max_age + 2 * settings.leeway
        """How long a proof id is remembered: as long as the proof could be accepted."""
        self._seen: Expiring[bytes, bool] = Expiring(settings.replay_cache_size, clock)
        # a client's proofs share one header segment (typ, alg, jwk): its key and thumbprint
        # are built once; segments are attacker-chosen, so the memo is bounded
        self._headers: Memo[str, tuple[SignatureCheck, str]] = Memo(_HEADER_MEMO)
        self._uris: Memo[str, str] = Memo(_HEADER_MEMO)
        self._aths: Memo[str, str] = Memo(_HEADER_MEMO)  # token -> its ath

    def check(self, proof: Proof, token: str, jkt: Any) -> bytes:
        """Check ``proof`` for ``token`` bound to ``jkt``; return the proof's replay key
        (already claimed in this process; the caller claims it fleet-wide).

        Raises :class:`InvalidDPoPProof` (or :class:`UseDPoPNonce`) when it does not hold.

        Args:
            proof: the request's proof, method and URI.
            token: the access token.
            jkt: the token's ``cnf.jkt``.
        """
        if not isinstance(jkt, str) or not jkt:
            raise InvalidDPoPProof("the token is bound to no DPoP key (cnf.jkt)")
        settings = self.settings
        now = self._clock()
        thumbprint, claims = self._verified(proof.jwt)
        if not hmac.compare_digest(thumbprint, jkt):
            raise InvalidDPoPProof("the proof is signed with another key than the token's")
        if claims.get("htm") != proof.method:
            raise InvalidDPoPProof("the proof names another HTTP method (htm)")
        htu = claims.get("htu")
        expected = self._normalized(proof.uri)
        if not isinstance(htu, str) or expected is None or self._normalized(htu) != expected:
            raise InvalidDPoPProof("the proof names another URI (htu)").with_context(
                expected_htu=expected
            )
        iat = as_number(claims.get("iat"))
        if iat is None:
            raise InvalidDPoPProof("the proof has no numeric iat")
        if iat > now + settings.leeway or iat < now - settings.max_age - settings.leeway:
            raise InvalidDPoPProof("the proof is too old or from the future (iat)").with_context(
                skew=round(now - iat, 3)
            )
        if iat <= self._seen.forgotten - settings.max_age - settings.leeway:
            # Proof ids were dropped for room while live (more proofs within the window than
            # replay_cache_size): one first seen by then has an iat at most this late, and
            # could be a replay we no longer recognise. Refused, never accepted twice.
            raise InvalidDPoPProof(
                "the proof is older than the proof ids this server still remembers (iat): "
                "send a fresh one"
            )
        ath = claims.get("ath")
        expected_ath = self._aths.get(token)  # tokens here were verified: a bounded few
        if expected_ath is None:
            expected_ath = _b64(hashlib.sha256(token.encode("ascii", "replace")).digest())
            self._aths.put(token, expected_ath)
        if not isinstance(ath, str) or not hmac.compare_digest(ath, expected_ath):
            raise InvalidDPoPProof("the proof is for another access token (ath)")
        if settings.nonce_secret is not None:
            self._check_nonce(claims.get("nonce"), now)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise InvalidDPoPProof("the proof needs a jti of at most 256 characters")
        replay = hashlib.sha256(f"{jkt}\x00{jti}".encode()).digest()
        if not self._seen.add(replay, True, now + self.window):
            raise InvalidDPoPProof("the proof was used before (jti)")
        return replay

    def _normalized(self, uri: str) -> str | None:
        """:func:`normalized_uri`, memoised (``""``: not an http(s) URI)."""
        found = self._uris.get(uri)
        if found is None:
            found = normalized_uri(uri) or ""
            self._uris.put(uri, found)
        return found or None

    def _verified(self, jwt: str) -> tuple[str, dict[str, Any]]:
        """The proof's key thumbprint and claims, its signature verified under its own
        ``jwk``."""
        # the alphabet (a non-ASCII character encodes to bytes outside it): what a delete
        # leaves, a third of a regular expression's cost on every request
        if (
            len(jwt) > MAX_PROOF_BYTES
            or jwt.encode("utf-8", "replace").translate(None, _COMPACT_ALPHABET)
            or jwt.count(".") != 2
        ):
            raise InvalidDPoPProof("the DPoP proof is not a compact JWS")
        h, p, s = jwt.split(".")
        if not (h and p and s):
            raise InvalidDPoPProof("the DPoP proof is not a compact JWS")
        if not (canonical_tail(h) and canonical_tail(p) and canonical_tail(s)):
            raise InvalidDPoPProof("the DPoP proof is not canonical base64url")
        known = self._headers.get(h)
        if known is None:
            known = self._header(h)
            self._headers.put(h, known)
        check, thumbprint = known
        try:  # the alphabet and the tails are checked above: decode without checking again
            claims = loads_strict(_a2b(p.encode().translate(TO_STD) + b"=="))
            signature = _a2b(s.encode().translate(TO_STD) + b"==")
        except ValueError:
            raise InvalidDPoPProof("the DPoP proof is not base64url JSON") from None
        if type(claims) is not dict:
            raise InvalidDPoPProof("the DPoP proof's header and claims must be JSON objects")
        if not check(f"{h}.{p}".encode(), signature):
            raise InvalidDPoPProof("the DPoP proof's signature is invalid")
        return thumbprint, claims

    def _header(self, segment: str) -> tuple[SignatureCheck, str]:
        """The signature check and key thumbprint a proof header names, or refuse it."""
        try:
            header = loads_strict(b64url_decode(segment))
        except ValueError:
            raise InvalidDPoPProof("the DPoP proof is not base64url JSON") from None
        if type(header) is not dict:
            raise InvalidDPoPProof("the DPoP proof's header and claims must be JSON objects")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
            raise InvalidDPoPProof("the DPoP proof's typ must be dpop+jwt")
        if "crit" in header:
            raise InvalidDPoPProof("the DPoP proof's 'crit' header is not supported")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise InvalidDPoPProof("the DPoP proof's algorithm is not allowed").with_context(
                expected_alg=" ".join(self.settings.algorithms)
            )
        jwk = header.get("jwk")
        if type(jwk) is not dict:
            raise InvalidDPoPProof("the DPoP proof carries no jwk")
        try:
            key = key_from_jwk(jwk, allow_secret=False)  # private members are refused
            thumbprint = jwk_thumbprint(jwk)
        except (ConfigurationError, ValueError) as exc:
            raise InvalidDPoPProof("the DPoP proof's jwk is not a usable public key").with_context(
                jwk_error=str(exc)
            ) from None
        if not key.suits(alg):
            raise InvalidDPoPProof("the DPoP proof's jwk does not fit its algorithm")
        return key.check_for(alg), thumbprint

    # -- server nonces (RFC 9449 §8): stateless, HMAC over a time slot --------------------------

    def nonce(self) -> str:
        """A fresh nonce for ``DPoP-Nonce`` (``""`` when nonces are off)."""
        secret = self.settings.nonce_secret
        if secret is None:
            return ""
        slot = int(self._clock() // self.settings.nonce_lifetime)
        return self._nonce(secret, slot)

    @staticmethod
    def _nonce(secret: bytes, slot: int) -> str:
        mac = hmac.new(secret, slot.to_bytes(8, "big"), hashlib.sha256).digest()
        return f"{slot:x}.{_b64(mac[:18])}"

    def _check_nonce(self, nonce: Any, now: float) -> None:
        secret = self.settings.nonce_secret
        assert secret is not None
        slot = int(now // self.settings.nonce_lifetime)
        if isinstance(nonce, str) and any(
            hmac.compare_digest(nonce, self._nonce(secret, s)) for s in (slot, slot - 1)
        ):
            return
        raise UseDPoPNonce(self.nonce())
