"""The principal: one frozen, normalized identity for every provider and credential kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from ._json import as_number
from .errors import MalformedToken, MissingClaim

__all__ = [
    "ANONYMOUS",
    "Anonymous",
    "Principal",
    "RolePath",
    "Roles",
    "role_paths",
    "roles_from_claims",
    "scopes_from_claims",
]

AUTHENTICATED = "authenticated"
"""The scope every authenticated principal holds (Starlette's ``@requires`` convention)."""
_AUTHENTICATED = frozenset({AUTHENTICATED})

CredentialKind = Literal["jwt", "api_key", "opaque"]
VerifiedBy = Literal["local", "remote"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who made the request, as verified; works as Starlette's ``request.user`` and ``.auth``.

    Args:
        subject: the stable user or client id (``sub``, Authon ``id``, an API key's subject),
            unique within its issuer only: with several providers, or a provider of several
            issuers (tenants), key your users by ``(provider, issuer, subject)``.
        provider: the configured provider's name.
        credential: ``jwt``, ``api_key`` or ``opaque``.
        issuer: the token issuer, when known.
        tenant: the tenant or project id, when known.
        email: the user's email, when known.
        name: a display name, when known.
        scopes: what the credential may do; always holds ``"authenticated"`` too (as
            Starlette's ``AuthCredentials`` do), so ``@requires("authenticated")`` works.
        roles: the roles the provider's ``role_claims`` found (empty by default).
        expires_at: when the credential expires (seconds since the epoch), when known.
        verified_by: ``local`` or ``remote``: how the credential was verified, on this request
            or, for a principal served from the verified-token cache, on the one that cached it.
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
    roles: frozenset[str] = frozenset()
    expires_at: float | None = None
    verified_by: VerifiedBy = "local"
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Starlette's BaseUser and AuthCredentials, by duck typing: the core never imports Starlette.
    is_authenticated: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if type(self.claims) is not MappingProxyType:
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))
        if AUTHENTICATED not in self.scopes:  # Starlette's convention, for @requires
            object.__setattr__(self, "scopes", frozenset(self.scopes) | _AUTHENTICATED)

    @property
    def identity(self) -> str:
        """The subject (Starlette's ``BaseUser.identity``): unique within one issuer."""
        return self.subject

    @property
    def display_name(self) -> str:
        """The name, else the email, else the subject."""
        return self.name or self.email or self.subject

    def missing_scopes(self, *required: str) -> tuple[str, ...]:
        """Which of ``required`` are not granted, in their order (empty: all are).

        Args:
            required: scope names.
        """
        return tuple(scope for scope in required if scope not in self.scopes)

    def missing_roles(self, *required: str) -> tuple[str, ...]:
        """Which of ``required`` roles are not held, in their order (empty: all are).

        Args:
            required: role names.
        """
        return tuple(role for role in required if role not in self.roles)


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
    return frozenset(_scopes(claims))


_NO_ROLES: frozenset[str] = frozenset()  # not a singleton in CPython: one, shared
_SCOPE_SETS: dict[str, frozenset[str]] = {}
_SCOPE_SETS_SIZE = 256


def _scope_set(claims: Mapping[str, Any]) -> frozenset[str]:
    """A principal's scopes, ``"authenticated"`` included. Tokens of one issuer carry a few
    distinct ``scope`` strings: their sets are made once and shared (a bounded memo, emptied
    when full), which saves each cached principal its own set and strings."""
    scope = claims.get("scope")
    if (scope is not None and type(scope) is not str) or "scp" in claims or "permissions" in claims:
        found = _scopes(claims)
        found.add(AUTHENTICATED)
        return frozenset(found)
    if scope is None:
        return _AUTHENTICATED
    shared = _SCOPE_SETS.get(scope)
    if shared is None:
        shared = frozenset(scope.split()) | _AUTHENTICATED
        if len(_SCOPE_SETS) >= _SCOPE_SETS_SIZE:
            _SCOPE_SETS.clear()
        _SCOPE_SETS[scope] = shared
    return shared


def shared_scopes(principal: Principal) -> bool:
    """Whether ``principal``'s scope set is the one shared by every principal with its
    ``scope`` string (so a cache entry holding it does not hold its own).

    Args:
        principal: a principal.
    """
    if principal.scopes is _AUTHENTICATED:
        return True
    scope = principal.claims.get("scope")
    return type(scope) is str and _SCOPE_SETS.get(scope) is principal.scopes


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp", "permissions"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return found


RolePath = str | tuple[str, ...]
"""Where roles sit in the claims: a claim name, a dotted path (``"realm_access.roles"``), or a
tuple of names for a path whose names hold dots (``("resource_access", "my.app", "roles")``)."""


class Roles:
    """Presets for a provider's ``role_claims=``: where common identity providers put roles."""

    ENTRA_ID: tuple[RolePath, ...] = ("roles",)
    """Microsoft Entra ID: app roles in ``roles``."""
    AUTH0: tuple[RolePath, ...] = ("permissions",)
    """Auth0 with RBAC: ``permissions`` (add a namespaced roles claim of your own if any)."""
    COGNITO: tuple[RolePath, ...] = ("cognito:groups",)
    """Amazon Cognito: the user's groups."""

    @staticmethod
    def keycloak(client_id: str | None = None) -> tuple[RolePath, ...]:
        """Keycloak: realm roles (``realm_access.roles``), and a client's roles
        (``resource_access.<client_id>.roles``) when ``client_id`` is given.

        Args:
            client_id: the client whose roles count too.
        """
        paths: tuple[RolePath, ...] = (("realm_access", "roles"),)
        if client_id is not None:
            paths += (("resource_access", client_id, "roles"),)
        return paths


def role_paths(value: Any) -> tuple[RolePath, ...]:
    """``role_claims=``, validated: claim names, dotted paths or tuples of names.

    Args:
        value: what the provider was given.
    """
    from .errors import ConfigurationError

    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError("role_claims must be a list of claim paths, not one string")
    paths = tuple(value)
    for path in paths:
        parts = path if isinstance(path, tuple) else (path,)
        if not parts or not all(isinstance(part, str) and part for part in parts):
            raise ConfigurationError(
                "each of role_claims must be a claim name, a dotted path or a tuple of names"
            )
    return paths


def roles_from_claims(claims: Mapping[str, Any], paths: tuple[RolePath, ...]) -> frozenset[str]:
    """The roles at ``paths``: each a list of strings (or one string) in the claims.

    A string path is first a claim name (``"cognito:groups"``, a URL-named claim), then a
    dotted path. Missing paths and values of other types contribute nothing.

    Args:
        claims: the verified claims.
        paths: where to look.
    """
    found: set[str] = set()
    for path in paths:
        if isinstance(path, str):
            value = claims.get(path, _MISSING)
            if value is _MISSING and "." in path:
                value = _walk(claims, tuple(path.split(".")))
        else:
            value = _walk(claims, path)
        if isinstance(value, str) and value:
            found.add(value)
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str) and item)
    return frozenset(found)


_MISSING: Any = object()


def _walk(claims: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = claims
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


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
    role_claims: tuple[RolePath, ...] = (),
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
        role_claims: where the roles are (see :func:`roles_from_claims`).
    """
    subject = claims.get(subject_claim)
    if subject_claim == "sub" and subject is not None and not isinstance(subject, str):
        # RFC 7519 §4.1.2: a StringOrURI. A number read as text would merge subject 5 with "5".
        raise MalformedToken("the 'sub' claim must be a string (RFC 7519)", claim="sub")
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)  # a provider's own numeric user id (not a JWT's sub)
    if not isinstance(subject, str) or not subject:
        raise MissingClaim(f"the token has no usable {subject_claim!r} claim", claim=subject_claim)
    exp = claims.get("exp")
    return Principal(
        subject=subject,
        provider=provider,
        credential=credential,
        issuer=_str_or_none(claims.get("iss")),
        tenant=_first_str(claims, tenant_claims),
        email=_str_or_none(claims.get("email")),
        name=_first_str(claims, name_claims),
        scopes=_scope_set(claims),
        roles=roles_from_claims(claims, role_claims) if role_claims else _NO_ROLES,
        expires_at=as_number(exp),
        verified_by=verified_by,
        # verified claims are a fresh dict nobody else holds: wrap it, no copy.
        claims=MappingProxyType(claims) if type(claims) is dict else claims,
    )
