"""Strict local verification of compact JWS tokens (RFC 7515, RFC 7519, RFC 8725).

The order of checks is the order of cost: size, shape, header (cached by its exact segment),
payload JSON, signature, claims. Nothing about the token chooses how it is verified: the
allowlist and the keys come from configuration only.
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from ._cache import Memo
from ._codec import TO_STD, b64url_decode, canonical_tail
from ._config import leeway_seconds, names
from ._json import as_number, loads_strict
from .errors import (
    AlgorithmNotAllowed,
    BadAudience,
    BadIssuer,
    BadSignature,
    ConfigurationError,
    ExpiredToken,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    UnsupportedHeader,
)
from .events import Event
from .extract import MAX_TOKEN_BYTES, refuse_oversized
from .keys import ALGORITHMS, MAX_KID_BYTES, SAME_ALGORITHM, KeySet, SignatureCheck
from .keysources import RemoteKeySource
from .store import Store

__all__ = [
    "JWTVerifier",
    "check_times",
    "diagnose_compact",
    "is_compact_jws",
    "unverified_claims",
    "unverified_exp",
    "unverified_header",
]

_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_HEADER_MEMO_SIZE: Final = 256
_a2b = binascii.a2b_base64

# Decoded header segments, shared by routing and every verifier: tokens of one issuer share a
# few headers, decoded once. The dicts are never mutated by their readers.
_decoded_headers: Memo[str, dict[str, Any]] = Memo(_HEADER_MEMO_SIZE)


def unverified_header(segment: str) -> dict[str, Any]:
    """The decoded, *unverified* header segment of a compact JWS (memoised, bounded).

    Raises :class:`MalformedToken` when it is not canonical base64url of a strict JSON object.

    Args:
        segment: the first segment of the token.
    """
    header = _decoded_headers.get(segment)
    if header is None:
        try:
            decoded = loads_strict(b64url_decode(segment))
        except ValueError:
            raise MalformedToken("the header is not base64url UTF-8 JSON") from None
        if type(decoded) is not dict:
            raise MalformedToken("the header is not a JSON object")
        header = decoded
        _decoded_headers.put(segment, header)
    return header


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The *unverified* claims of a compact JWT, or ``None`` when they are not a JSON object.

    For routing and for bounding cache or denylist entries only: never for trust.

    Args:
        token: the compact JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = loads_strict(b64url_decode(parts[1]))
    except ValueError:
        return None
    return claims if type(claims) is dict else None


class _Header:
    """A validated header; ``bound`` pairs a key set with its candidates, swapped atomically."""

    __slots__ = ("alg", "bound", "kid")

    def __init__(self, alg: str, kid: str | None) -> None:
        self.alg = alg
        self.kid = kid
        self.bound: tuple[KeySet | None, tuple[SignatureCheck, ...]] = (None, ())


def is_compact_jws(token: str) -> bool:
    """Whether ``token`` has the compact JWS shape: three non-empty base64url segments.

    Args:
        token: the candidate token.
    """
    return _COMPACT.fullmatch(token) is not None


def diagnose_compact(token: str) -> MalformedToken:
    """Explain why ``token`` is not a compact JWS, without echoing any of it."""
    if not token:
        return MalformedToken("the token is empty")
    if token[:1] == "{":
        return MalformedToken("JSON serialization is not accepted; send the compact form")
    if token[:7].lower() == "bearer ":
        return MalformedToken("send the token without the 'Bearer ' prefix")
    dots = token.count(".")
    if dots == 4:
        return MalformedToken("the token is a JWE (5 segments); only signed JWTs are accepted")
    if dots != 2:
        return MalformedToken(f"a JWT has 3 segments, this token has {dots + 1}")
    if any(not part for part in token.split(".")):
        return MalformedToken("a segment of the token is empty (unsigned tokens are refused)")
    return MalformedToken("the token is not base64url: only A-Z a-z 0-9 - _ without padding")


def numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """The numeric date ``claims[name]``; ``None`` when absent; :class:`MalformedToken` when it
    is not a finite JSON number within ±2^53.

    Args:
        claims: decoded claims.
        name: ``exp``, ``nbf`` or ``iat``.
    """
    value = claims.get(name)
    if value is None:
        return None
    number = as_number(value)
    if number is None:
        raise MalformedToken(f"the {name!r} claim must be a finite JSON number within ±2^53")
    return number


def check_times(claims: dict[str, Any], now: float, leeway: float) -> None:
    """The time rules, for a JWT's claims or an endpoint's answer alike: ``exp`` not passed,
    ``nbf`` and ``iat`` not in the future, each give or take ``leeway``.

    Args:
        claims: decoded claims (numeric dates must be finite JSON numbers within ±2^53).
        now: the current time.
        leeway: seconds of clock skew allowed.
    """
    exp = numeric_date(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise ExpiredToken("the token has expired").with_context(skew=now - exp)
    nbf = numeric_date(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise NotYetValid("the token is not valid yet (nbf)").with_context(skew=now - nbf)
    iat = numeric_date(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise NotYetValid("the token was issued in the future (iat)", claim="iat").with_context(
            skew=now - iat
        )


class JWTVerifier:
    """Verify compact JWS tokens against configured keys and claim rules.

    Args:
        keys: a static :class:`KeySet`, or a remote key source (JWKS URL, OIDC discovery).
        algorithms: the allowlist; never taken from the token. ``none`` cannot be listed.
        issuer: when set, ``iss`` must be present and equal (exact match).
        audience: when set, ``aud`` must contain one of these; when unset, a token carrying
            ``aud`` is refused (RFC 7519 §4.1.3).
        leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
        required_claims: claims that must be present and non-null.
        clock: returns the current time in seconds since the epoch.
        max_token_bytes: longer tokens are refused before any parsing.
        typ: when set, the header's ``typ`` must name this media type (e.g. ``at+jwt``).
    """

    def __init__(
        self,
        keys: KeySet | RemoteKeySource,
        *,
        algorithms: Iterable[str],
        issuer: str | None = None,
        audience: str | Iterable[str] | None = None,
        leeway: float = 30.0,
        required_claims: Iterable[str] = ("exp",),
        clock: Callable[[], float] = time.time,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        typ: str | None = None,
    ) -> None:
        if isinstance(algorithms, str):
            raise ConfigurationError(
                f"algorithms must be a list of names, not one string: [{algorithms!r}]"
            )
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning seconds since the epoch")
        if typ is not None and (not isinstance(typ, str) or not typ):
            raise ConfigurationError("typ must be a media type name such as 'at+jwt'")
        allowed = tuple(algorithms)
        if not allowed:
            raise ConfigurationError("the algorithm allowlist is empty")
        for alg in allowed:
            if not isinstance(alg, str) or alg.lower() == "none":
                raise ConfigurationError("the 'none' algorithm is never allowed")
            if alg not in ALGORITHMS:
                raise ConfigurationError(
                    f"unknown algorithm {alg!r}; supported: {', '.join(ALGORITHMS)}"
                )
        if isinstance(keys, KeySet):
            if not any(key.suits(alg) for key in keys.keys for alg in allowed):
                raise ConfigurationError("no configured key suits any allowed algorithm")
            self._keyset: KeySet | None = keys
            self._source: RemoteKeySource | None = None
        elif isinstance(keys, RemoteKeySource):
            self._keyset, self._source = None, keys
        else:
            raise ConfigurationError("keys must be a KeySet or a remote key source")
        self.leeway = leeway_seconds(leeway)
        if not (isinstance(max_token_bytes, int) and max_token_bytes > 0):
            raise ConfigurationError("max_token_bytes must be a positive integer")
        if issuer is not None and (not isinstance(issuer, str) or not issuer):
            raise ConfigurationError("issuer must be a non-empty string")
        audiences: frozenset[str] | None
        if audience is None:
            audiences = None
        else:
            audiences = frozenset([audience] if isinstance(audience, str) else audience)
            if not audiences or not all(isinstance(a, str) and a for a in audiences):
                raise ConfigurationError("audience must be a non-empty string or strings")
        # an allowlist naming EdDSA or Ed25519 (RFC 9864) accepts a header naming either
        self.algorithms: frozenset[str] = frozenset(allowed) | {
            SAME_ALGORITHM[alg] for alg in allowed if alg in SAME_ALGORITHM
        }
        self.issuer = issuer
        self.audience = audiences
        self.required_claims = names(required_claims, "required_claims")
        self.max_token_bytes = max_token_bytes
        self.typ = _normalise_typ(typ) if typ is not None else None
        self._clock = clock
        self._headers: Memo[str, _Header] = Memo(_HEADER_MEMO_SIZE)

    @property
    def key_source(self) -> KeySet | RemoteKeySource:
        """Where this verifier's keys come from."""
        if self._keyset is not None:
            return self._keyset
        assert self._source is not None
        return self._source

    def observe(self, emit: Callable[[Event], None]) -> None:
        """Report the key source's fetches to ``emit`` (nothing to report for static keys).

        Args:
            emit: the authenticator's event dispatcher.
        """
        if self._source is not None:
            self._source.observe(emit)

    def use_store(self, store: Store) -> None:
        """Share the key source's fetched sets through ``store`` (static keys: nothing).

        Args:
            store: an :class:`authgate.redis.RedisStore`.
        """
        if self._source is not None:
            self._source.use_store(store)

    def close(self) -> None:
        """Close the key source's pooled connections (nothing to do for static keys)."""
        if self._source is not None:
            self._source.close()

    async def aclose(self) -> None:
        """Like :meth:`close`, awaiting this event loop's connections."""
        if self._source is not None:
            await self._source.aclose()

    # -- the two entry points: identical but for the one I/O call ---------------------------

    @property
    def has_keys(self) -> bool:
        """Whether usable keys are held now (static ones, or a remote source's current set)."""
        if self._keyset is not None:
            return True
        return self._source is not None and self._source.current() is not None

    def verify(self, token: str | bytes) -> dict[str, Any]:
        """Verify ``token`` and return its claims; raise :class:`InvalidToken` if it is bad.

        Raises :class:`KeySourceUnavailable` when the keys cannot be fetched and none are usable.

        Args:
            token: the compact JWS, without any ``Bearer`` prefix.
        """
        header, signing_input, signature, claims = self._decode(token)
        checks = self._checks(header)
        if checks is None:
            assert self._source is not None
            self._check_worth_fetching(claims)
            self._source.refresh(header.kid)
            checks = self._checks_after_refresh(header)
        self._verify_signature(checks, signing_input, signature)
        self._check_claims(claims)
        return claims

    async def verify_async(self, token: str | bytes) -> dict[str, Any]:
        """Verify like :meth:`verify`; a key fetch never blocks the event loop.

        Args:
            token: the compact JWS, without any ``Bearer`` prefix.
        """
        header, signing_input, signature, claims = self._decode(token)
        checks = self._checks(header)
        if checks is None:
            assert self._source is not None
            self._check_worth_fetching(claims)
            await self._source.refresh_async(header.kid)
            checks = self._checks_after_refresh(header)
        self._verify_signature(checks, signing_input, signature)
        self._check_claims(claims)
        return claims

    # -- the pure parts ---------------------------------------------------------------------

    def _decode(self, token: str | bytes) -> tuple[_Header, bytes, bytes, dict[str, Any]]:
        if type(token) is not str:
            if not isinstance(token, bytes | bytearray):
                raise MalformedToken("the token must be text")
            try:
                token = bytes(token).decode("ascii")
            except UnicodeDecodeError:
                raise MalformedToken("the token is not ASCII") from None
        refuse_oversized(token, self.max_token_bytes)
        if _COMPACT.fullmatch(token) is None:
            raise diagnose_compact(token)
        h, p, s = token.split(".")
        header = self._headers.get(h)
        if header is None:
            header = self._parse_header(h)
        if not canonical_tail(p):
            raise MalformedToken("the payload is not canonical base64url")
        if not canonical_tail(s):
            raise MalformedToken("the signature is not canonical base64url")
        try:
            claims = loads_strict(_a2b(p.encode().translate(TO_STD) + b"=="))
        except ValueError:
            raise MalformedToken("the payload is not UTF-8 JSON without duplicates") from None
        if type(claims) is not dict:
            raise MalformedToken("the payload is not a JSON object")
        signature = _a2b(s.encode().translate(TO_STD) + b"==")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            # before any key lookup: one reason for a foreign issuer, whatever keys are cached
            raise BadIssuer("the token issuer is not accepted").with_context(
                expected_iss=self.issuer
            )
        return header, token[: len(h) + len(p) + 1].encode(), signature, claims

    def _parse_header(self, segment: str) -> _Header:
        fields = unverified_header(segment)
        if "enc" in fields:
            raise MalformedToken("the token is a JWE; only signed JWTs are accepted")
        if "crit" in fields:
            crit = fields["crit"]
            if not (isinstance(crit, list) and crit and all(isinstance(c, str) for c in crit)):
                raise MalformedToken("the header 'crit' must be a non-empty array of strings")
            raise UnsupportedHeader("the 'crit' header parameter is not supported")
        if "b64" in fields:
            if not isinstance(fields["b64"], bool):
                raise MalformedToken("the header 'b64' must be true or false")
            raise UnsupportedHeader("the 'b64' header parameter (RFC 7797) is not supported")
        alg = fields.get("alg")
        if not isinstance(alg, str):
            raise MalformedToken("the header has no 'alg' string")
        if alg not in self.algorithms:
            # covers 'none' in any spelling: it can never be in the allowlist.
            raise AlgorithmNotAllowed("the token's algorithm is not allowed").with_context(
                expected_alg=" ".join(sorted(self.algorithms))
            )
        # a member we read is present with the right type, or absent: never null for absent
        kid = fields.get("kid")
        if "kid" in fields and (
            not isinstance(kid, str) or len(kid.encode("utf-8")) > MAX_KID_BYTES
        ):
            raise MalformedToken("the header 'kid' must be a string of at most 256 bytes")
        typ = fields.get("typ")
        if "typ" in fields and not isinstance(typ, str):
            raise MalformedToken("the header 'typ' must be a string")
        if self.typ is not None and (typ is None or _normalise_typ(typ) != self.typ):
            raise UnsupportedHeader(f"the header 'typ' must be {self.typ!r}")
        header = _Header(alg, kid)
        self._headers.put(segment, header)  # headers are attacker-chosen: a bounded memo
        return header

    def _checks(self, header: _Header) -> tuple[SignatureCheck, ...] | None:
        """The candidate checks, or ``None`` when the source must be refreshed first."""
        keyset = self._keyset
        if keyset is None:
            assert self._source is not None
            keyset = self._source.current()
            if keyset is None:
                return None
        bound_set, checks = header.bound
        if bound_set is not keyset:
            checks = keyset.candidates(header.kid, header.alg)
            header.bound = (keyset, checks)
        if checks:
            return checks
        if self._source is not None and self._source.may_refetch(header.kid):
            return None
        raise KeyNotFound("no configured key matches the token's kid and alg")

    def _checks_after_refresh(self, header: _Header) -> tuple[SignatureCheck, ...]:
        assert self._source is not None
        keyset = self._source.current()
        if keyset is None:
            raise self._source.unavailable()
        checks = keyset.candidates(header.kid, header.alg)
        header.bound = (keyset, checks)
        if not checks:
            self._source.mark_absent(header.kid)
            raise KeyNotFound("no configured key matches the token's kid and alg")
        return checks

    def _check_worth_fetching(self, claims: dict[str, Any]) -> None:
        """Refuse, before any network call, a token that cannot pass whatever the keys are."""
        exp = numeric_date(claims, "exp")
        now = self._clock()
        if exp is not None and now >= exp + self.leeway:
            raise ExpiredToken("the token has expired").with_context(skew=now - exp)

    @staticmethod
    def _verify_signature(
        checks: tuple[SignatureCheck, ...], signing_input: bytes, signature: bytes
    ) -> None:
        for check in checks:
            if check(signing_input, signature):
                return
        raise BadSignature("the token signature does not verify")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for name in self.required_claims:
            if claims.get(name) is None:
                raise MissingClaim(f"the token lacks the required claim {name!r}", claim=name)
        check_times(claims, self._clock(), self.leeway)
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise BadIssuer("the token issuer is not accepted").with_context(
                expected_iss=self.issuer
            )
        if "aud" in claims:
            self._check_audience(claims["aud"])
        elif self.audience is not None:
            raise BadAudience("the token has no audience").with_context(
                expected_aud=" ".join(sorted(self.audience))
            )

    def _check_audience(self, aud: Any) -> None:
        if self.audience is None:
            raise BadAudience("the token names an audience and none is configured")
        if isinstance(aud, str):
            if aud in self.audience:
                return
        elif isinstance(aud, list) and all(isinstance(item, str) for item in aud):
            if not self.audience.isdisjoint(aud):
                return
        else:
            raise MalformedToken("the 'aud' claim must be a string or an array of strings")
        raise BadAudience("the token audience is not accepted").with_context(
            expected_aud=" ".join(sorted(self.audience))
        )


def _normalise_typ(typ: str) -> str:
    # RFC 7515 §4.1.9: a media type, case-insensitive, "application/" may be left out.
    lowered = typ.lower()
    return lowered[12:] if lowered.startswith("application/") else lowered


def unverified_exp(token: str) -> float | None:
    """The ``exp`` a compact JWT claims, *unverified*: only to bound a cache or denylist entry.

    Args:
        token: the compact JWT.
    """
    claims = unverified_claims(token)
    return None if claims is None else as_number(claims.get("exp"))
