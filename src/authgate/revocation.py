"""A denylist for signed-out tokens: by token, by ``jti``, or by subject + issued-before.

A token is denied by what its signature covers (the signing input, ``header.payload``), not by
its whole text: ECDSA signatures are malleable (``(r, n - s)`` verifies too), so the same
claims can arrive under another token string, and JOSE requires no low-S form. Entries hold
digests, never tokens, and are forgotten once every token they can match has expired, its
leeway included (:data:`~authgate._config.MAX_LEEWAY` past it): a token entry after the
token's ``exp``, a ``jti`` entry after the given expiry (or ``max_token_lifetime`` from now),
a subject entry ``max_token_lifetime`` after its cut-off. The authenticator accepts no token
living longer than ``max_token_lifetime``, so none outlives the revocation that denies it.
Expired entries are pruned when the list has doubled since the last prune: amortised O(1) per
revocation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._codec import sha256
from ._config import MAX_LEEWAY
from ._json import is_number
from .principal import Principal

__all__ = ["Denylist", "signing_input", "token_digest"]


class Denylist:
    """Revoked credentials, each kept until it would have expired anyway.

    Args:
        clock: returns the current time.
        max_token_lifetime: the longest any token lives, for entries whose expiry is unknown.
    """

    def __init__(self, *, clock: Callable[[], float], max_token_lifetime: float = 86400.0) -> None:
        self._clock = clock
        self.max_token_lifetime = max_token_lifetime
        self._lock = threading.Lock()
        self._tokens: dict[bytes, float] = {}
        self._jtis: dict[str, float] = {}
        self._subjects: dict[tuple[str | None, str], tuple[float, float]] = {}
        self._pruned_at = 0  # the list's size after the last prune

    def __len__(self) -> int:
        return len(self._tokens) + len(self._jtis) + len(self._subjects)

    def revoke_token(self, token: str, expires_at: float | None) -> None:
        """Deny this token (and any other signature over its signing input) until ``expires_at``.

        Args:
            token: the token.
            expires_at: its ``exp`` (unknown: ``max_token_lifetime`` from now).
        """
        until = self._until(expires_at)
        with self._lock:
            self._tokens[_digest(token)] = until
            self._prune()

    def revoke_digest(self, digest: bytes, until: float) -> None:
        """Deny the tokens whose signing input has this digest (a revocation from another
        process: it carries the digest, never the token).

        Args:
            digest: :func:`token_digest` of the revoked token.
            until: when the entry may be forgotten.
        """
        with self._lock:
            self._tokens[digest] = min(until, self._longest())
            self._prune()

    def revoke_digests(self, digests: dict[bytes, float]) -> None:
        """:meth:`revoke_digest` for many at once (a worker loading the fleet's denylist).

        Args:
            digests: ``until`` by digest.
        """
        if not digests:
            return
        cap = self._longest()
        with self._lock:
            tokens = self._tokens
            for digest, until in digests.items():
                tokens[digest] = until if until < cap else cap
            self._prune()

    def revoke_jti(self, jti: str, expires_at: float | None) -> None:
        """Deny every token with this ``jti``.

        Args:
            jti: the token id.
            expires_at: when tokens with it expire (unknown: ``max_token_lifetime`` from now).
        """
        until = self._until(expires_at)
        with self._lock:
            self._jtis[jti] = until
            self._prune()

    def revoke_subject(self, subject: str, issued_before: float, issuer: str | None = None) -> None:
        """Deny the subject's tokens issued before ``issued_before`` (``iat``).

        Args:
            subject: the principal's subject.
            issued_before: tokens with an earlier ``iat`` (or none) are denied.
            issuer: only tokens of this issuer (``None``: any).
        """
        until = self.subject_until(issued_before)
        with self._lock:
            key = (issuer, subject)
            previous = self._subjects.get(key)
            if previous is None or previous[0] < issued_before:
                self._subjects[key] = (issued_before, until)
            self._prune()

    def records(self) -> list[dict[str, Any]]:
        """What is denied now, as the store spells revocations (written back to a store that
        lost them): token digests, ``jti`` values, subjects with their cut-off."""
        now = self._clock()
        with self._lock:
            tokens = [(k, u) for k, u in self._tokens.items() if u > now]
            jtis = [(k, u) for k, u in self._jtis.items() if u > now]
            subjects = [(k, v) for k, v in self._subjects.items() if v[1] > now]
        held: list[dict[str, Any]] = [
            {"kind": "token", "digest": digest.hex(), "until": until} for digest, until in tokens
        ]
        held += [{"kind": "jti", "jti": jti, "until": until} for jti, until in jtis]
        held += [
            {"kind": "subject", "subject": subject, "issuer": issuer,
             "issued_before": cutoff, "until": until}
            for (issuer, subject), (cutoff, until) in subjects
        ]  # fmt: skip
        return held

    def is_revoked(self, token: str, principal: Principal) -> bool:
        """Whether ``token`` (verified as ``principal``) is denied now.

        Args:
            token: the whole token.
            principal: what it was verified as.
        """
        if not (self._tokens or self._jtis or self._subjects):
            return False
        now = self._clock()
        if self._tokens.get(_digest(token), 0.0) > now:
            return True
        jti = principal.claims.get("jti")
        if isinstance(jti, str) and self._jtis.get(jti, 0.0) > now:
            return True
        for issuer in (principal.issuer, None):
            entry = self._subjects.get((issuer, principal.subject))
            if entry is not None and entry[1] > now and _issued_before(principal, entry[0]):
                return True
        return False

    def matches(self, principal: Principal) -> bool:
        """Whether ``principal`` is denied by jti or subject (for purging caches).

        Args:
            principal: a cached principal.
        """
        return self.is_revoked("", principal)

    def until(self, expires_at: float | None) -> float:
        """When an entry for a token expiring at ``expires_at`` may be forgotten.

        Args:
            expires_at: the token's expiry (unknown: ``max_token_lifetime`` from now).
        """
        return self._until(expires_at)

    def subject_until(self, issued_before: float) -> float:
        """When a subject's entry with this cut-off may be forgotten: its last token issued
        before it has expired, leeway included.

        Args:
            issued_before: the cut-off ``iat``.
        """
        return issued_before + self.max_token_lifetime + MAX_LEEWAY

    def _longest(self) -> float:
        """The latest any token accepted now can still be served (leeway included)."""
        return self._clock() + self.max_token_lifetime + MAX_LEEWAY

    def _until(self, expires_at: float | None) -> float:
        longest = self._longest()
        if expires_at is None:
            return longest
        return min(expires_at + MAX_LEEWAY, longest)

    def _prune(self) -> None:
        if len(self) < 2 * self._pruned_at + 64:
            return  # amortised: each entry is visited O(1) times over its life
        now = self._clock()
        self._tokens = {k: until for k, until in self._tokens.items() if until > now}
        self._jtis = {k: until for k, until in self._jtis.items() if until > now}
        self._subjects = {k: v for k, v in self._subjects.items() if v[1] > now}
        self._pruned_at = len(self)


def signing_input(token: str) -> str:
    """What a compact JWS's signature covers (``header.payload``); an opaque token is its own.

    Args:
        token: a credential value.
    """
    if token.count(".") == 2:
        return token.rsplit(".", 1)[0]
    return token


def token_digest(token: str) -> bytes:
    """The denylist's key for a token: the SHA-256 of its signing input.

    Args:
        token: a credential value.
    """
    return sha256(signing_input(token))


_digest = token_digest


def _issued_before(principal: Principal, cutoff: float) -> bool:
    iat: Any = principal.claims.get("iat")
    if not is_number(iat):
        return True  # no proof it was issued after the sign-out
    return bool(iat < cutoff)
