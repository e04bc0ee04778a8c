"""The principal: one frozen, normalized identity for every provider and credential kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from ._json import as_number
from .errors import MissingClaim

__all__ = ["ANONYMOUS", "Anonymous", "Principal", "scopes_from_claims"]

AUTHENTICATED = "authenticated"
"""The scope every authenticated principal holds (Starlette's ``@requires`` convention)."""
_AUTHENTICATED = frozenset({AUTHENTICATED})

CredentialKind = Literal["jwt", "api_key", "opaque"]
VerifiedBy = Literal["local", "remote", "cache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who made the request, as verified; works as Starlette's ``request.user`` and ``.auth``.

    Args:
        subject: the stable user or client id (``sub``, Authon ``id``, an API key's subject).
        provider: the configured provider's name.
        credential: ``jwt``, ``api_key`` or ``opaque``.
        issuer: the token issuer, when known.
        tenant: the tenant or project id, when known.
        email: the user's email, when known.
        name: a display name, when known.
        scopes: what the credential may do; always holds ``"authenticated"`` too (as
            Starlette's ``AuthCredentials`` do), so ``@requires("authenticated")`` works.
        expires_at: when the credential expires (seconds since the epoch), when known.
        verified_by: ``local``, ``remote`` or ``cache``.
        claims: the raw claims or user object, read-only.
    """

    subject: str
    provider: str
    credential: CredentialKind = "jwt"
    issuer: str | None = None
    tenant: str | None = None
    email: str | None = None
    name: str | None = None
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None
    verified_by: VerifiedBy = "local"
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Starlette's BaseUser and AuthCredentials, by duck typing: the core never imports Starlette.
    # Apps read these on every request: plain slots, computed once, not properties.
    is_authenticated: ClassVar[bool] = True
    identity: str = field(init=False, repr=False, compare=False)
    """The subject."""
    display_name: str = field(init=False, repr=False, compare=False)
    """The name, else the email, else the subject."""

    def __post_init__(self) -> None:
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))
        if AUTHENTICATED not in self.scopes:  # Starlette's convention, for @requires
            object.__setattr__(self, "scopes", frozenset(self.scopes) | _AUTHENTICATED)
        object.__setattr__(self, "identity", self.subject)
        object.__setattr__(self, "display_name", self.name or self.email or self.subject)

    def has_scopes(self, *required: str) -> bool:
        """Whether every one of ``required`` is granted.

        Args:
            required: scope names.
        """
        return self.scopes.issuperset(required)

    def missing_scopes(self, *required: str) -> tuple[str, ...]:
        """Which of ``required`` are not granted, in their order (empty: all are).

        Args:
            required: scope names.
        """
        return tuple(scope for scope in required if scope not in self.scopes)

    def cached(self) -> Principal:
        """The same principal, marked as served from the verified-token cache."""
        clone = object.__new__(Principal)
        for name in _FIELD_NAMES:
            object.__setattr__(clone, name, getattr(self, name))
        object.__setattr__(clone, "verified_by", "cache")
        return clone


_FIELD_NAMES = tuple(f.name for f in fields(Principal))


class Anonymous:
    """No credential was presented (only with ``required=False``); also Starlette-compatible."""

    __slots__ = ()
    is_authenticated = False
    display_name = ""
    identity = ""
    scopes: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return "Anonymous()"

    def __bool__(self) -> bool:
        return False


ANONYMOUS = Anonymous()


def scopes_from_claims(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated, RFC 8693), ``scp`` and ``permissions``.

    Args:
        claims: the verified claims.
    """
    found: set[str] = set()
    for name in ("scope", "scp", "permissions"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(claims: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The first of ``names`` whose claim is a non-empty string."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def principal_from_claims(
    claims: Mapping[str, Any],
    *,
    provider: str,
    credential: CredentialKind = "jwt",
    verified_by: VerifiedBy = "local",
    subject_claim: str = "sub",
    tenant_claims: Iterable[str] = ("tenant", "tid", "org_id", "projectId"),
    name_claims: Iterable[str] = ("name", "displayName", "preferred_username"),
) -> Principal:
    """Map verified JWT-style claims to a :class:`Principal`.

    Args:
        claims: the verified claims.
        provider: the provider's name.
        credential: the credential kind.
        verified_by: how the claims were verified.
        subject_claim: the claim holding the subject.
        tenant_claims: claims tried in order for the tenant.
        name_claims: claims tried in order for the display name.
    """
    subject = claims.get(subject_claim)
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    if not isinstance(subject, str) or not subject:
        raise MissingClaim(f"the token has no usable {subject_claim!r} claim")
    exp = claims.get("exp")
    return Principal(
        subject=subject,
        provider=provider,
        credential=credential,
        issuer=_str_or_none(claims.get("iss")),
        tenant=_first_str(claims, tenant_claims),
        email=_str_or_none(claims.get("email")),
        name=_first_str(claims, name_claims),
        scopes=scopes_from_claims(claims),
        expires_at=as_number(exp),
        verified_by=verified_by,
        # verified claims are a fresh dict nobody else holds: wrap it, no copy.
        claims=MappingProxyType(claims) if type(claims) is dict else claims,
    )
