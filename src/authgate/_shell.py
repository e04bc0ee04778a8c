"""What the ASGI and WSGI shells share: their configuration and the full path's tail.

A shell is a thin protocol adapter. Everything it decides is decided here or in
:mod:`authgate._hitpath`, once for both: which paths are excluded, the cache-hit path, and
what a request without a credential gets (anonymous with ``required=False``, else 401).

Each shell's ``__call__`` is a plain method (an ``async def`` for ASGI): first the hit path
(:mod:`authgate._hitpath` states its one rule), over the cache's bound ``get`` and clock taken
once at construction, then, for anything the hit path does not answer, the full path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ._cache import Entry, Key, TokenCache
from ._hitpath import Challenge
from ._paths import PathRules
from .authenticator import Authenticator
from .errors import ConfigurationError, MissingCredential
from .extract import Credential, environ_key
from .principal import ANONYMOUS, Anonymous, Principal

__all__ = ["Shell", "add_vary", "varies_on"]

AppT = TypeVar("AppT")


def varies_on(credential: Credential | None) -> str | None:
    """The request header a response to ``credential`` depends on that HTTP caches do not
    know (``x-api-key``, the token cookie, a provider's own header), or ``None``.

    A shared cache never answers one client with a response to another's ``Authorization``
    (RFC 9111 §3.5), whatever the header; any other credential header it knows nothing of, and
    a cache that stores what it may (Varnish does by default) would serve the page of the key's
    holder to whoever asks next, before authgate sees the request. The shells add
    ``Vary: <header>`` to such responses.

    Args:
        credential: the request's credential.
    """
    if credential is None:
        return None
    if credential.header is not None:
        return credential.header
    if credential.kind == "api_key":
        return "x-api-key"
    return "cookie" if credential.from_cookie else None


def add_vary(value: str, header: str) -> str:
    """A ``Vary`` field's ``value`` naming ``header`` too (unchanged when it does, or is
    ``*``: it varies on everything).

    Args:
        value: the response's ``Vary`` field.
        header: the request header the response varies on.
    """
    named = {part.strip().lower() for part in value.split(",")}
    if header.lower() in named or "*" in named:
        return value
    return f"{value}, {header}" if value.strip() else header


class Shell(Generic[AppT]):
    """The configuration of a middleware shell over an :class:`Authenticator`.

    Args:
        app: the app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: paths that skip authentication: exact (``/health``), or a prefix and
            everything below it (``/docs/*``); see :mod:`authgate._paths`.
    """

    _text_keys = False
    """Whether the cache is keyed by ``str`` (WSGI's decoded headers), not bytes (ASGI's)."""

    def __init__(
        self,
        app: AppT,
        authenticator: Authenticator,
        *,
        required: bool = True,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        if not isinstance(authenticator, Authenticator):
            raise ConfigurationError("the middleware needs an authgate.Authenticator")
        if not isinstance(required, bool):
            raise ConfigurationError("required must be True or False")
        rules = PathRules(exclude_paths)
        self.app = app
        self.authenticator = authenticator
        self.required = required
        self.exclude_paths = rules.entries
        self._excluded: Callable[[Mapping[str, Any]], bool] | None = (
            self._predicate(rules) if rules else None
        )
        self._cookie = authenticator.cookie
        self._token_header = own = authenticator.token_header
        # A provider's own token header (AWS ALB's): beside an Authorization value the full
        # path refuses it (400), as it does x-api-key, so a hit must not carry it either.
        self._own = None if own is None else own.encode("latin-1")
        self._own_environ = None if own is None else environ_key(own)
        self._realm = Challenge(authenticator.realm, authenticator.dpop)
        # The hit path's reads, taken once: the cache's one mapping (never rebound, so a
        # revocation reaches it at once) and its clock. No cache: no hit path.
        self._get: Callable[[Key], Entry | None] | None = None
        cache = authenticator.cache
        if cache is not None:
            if self._text_keys:
                cache.use_text_keys()
            self._cache: TokenCache = cache
            self._get = cache.entries.get
            self._clock: Callable[[], float] = cache.clock
        # A cached DPoP-bound token skips extraction (the ASGI shell's DPoP lane) only where
        # nothing else can come with it: no client certificates, no provider header.
        self._proved_lane = (
            cache is not None
            and authenticator.dpop is not None
            and authenticator.client_certificates is None
            and own is None
        )

    def _predicate(self, rules: PathRules) -> Callable[[Mapping[str, Any]], bool]:
        """The exclusion test over this protocol's request (a scope, an environ)."""
        raise NotImplementedError

    def _is_excluded(self, request: Mapping[str, Any]) -> bool:
        return self._excluded is not None and self._excluded(request)

    def _settle(self, principal: Principal | None) -> Principal | Anonymous:
        """The full path's tail: the credential's principal, else anonymous or 401."""
        if principal is not None:
            return principal
        if self.required:
            raise MissingCredential()
        return ANONYMOUS
