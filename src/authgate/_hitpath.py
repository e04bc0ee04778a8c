"""The cache-hit path: from a request to a cached principal with no parsing at all.

One rule, for ASGI HTTP scopes and WSGI environs alike: the request carries exactly one
``Authorization`` value, no ``x-api-key``, and that raw value is a whole key of the
verified-token cache (keys are the canonical ``Bearer <token>`` line, see
:func:`authgate._cache.cache_key`, so a hit *is* a Bearer value of RFC 6750 syntax) whose
deadline the cache's clock has not reached. Then the shell attaches the principal and calls the
app. Anything else, however ordinary, goes to the shell's full path with the request untouched,
and the full path decides, including every 400.

The cache is indexed by the key's last bytes (:data:`authgate._cache.TAIL`) and the entry holds
the whole key, so a hit hashes a few dozen bytes and compares the rest: its cost does not grow
with the token.

Each builder returns the lookup for its protocol, built once per shell (as structlog specialises
its hot path at construction): a closure over the cache's bound ``get`` and its clock, so a hit
costs one loop over the header pairs, one dict lookup, one comparison and one clock read.

What a hit writes is chosen by cost too: ``scope["user"]`` and ``scope["auth"]`` (Starlette's
names) and the request's ``state``. The realm goes into the state (:data:`REALM_KEY`), not the
scope: the scope already holds the server's keys and the framework's, and one key more than its
table holds makes the interpreter grow the table on every request (measured: about 1,100
instructions, a tenth of the hit path's cost, on a Starlette app in-process and under uvicorn).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from ._cache import TAIL, TokenCache
from .principal import Anonymous, Principal

__all__ = ["ENVIRON_KEY", "REALM_KEY", "asgi_lookup", "attach", "realm_of", "wsgi_lookup"]

ENVIRON_KEY: Final = "authgate.principal"
"""Where the WSGI shell puts the principal."""
REALM_KEY: Final = "authgate.realm"
"""Where, in ``scope["state"]``, the ASGI shell names the realm of the authenticator that let
the request in (read by :mod:`authgate.fastapi` for its challenges)."""

_UNSET: Final = object()

Lookup = Callable[[Any], Principal | None]
"""A request (a scope, an environ) -> its cached principal, or ``None``: take the full path."""


def attach(scope: MutableMapping[str, Any], principal: Principal | Anonymous, realm: str) -> None:
    """Set ``scope["user"]``, ``scope["auth"]``, ``scope["state"]["principal"]`` and
    ``scope["state"]["authgate.realm"]`` (see :func:`realm_of`).

    Args:
        scope: the ASGI scope.
        principal: who the request is from.
        realm: the authenticator's challenge realm.
    """
    scope["user"] = scope["auth"] = principal
    state = scope.get("state")
    if state is None:
        scope["state"] = {"principal": principal, REALM_KEY: realm}
    else:
        state["principal"] = principal
        state[REALM_KEY] = realm


def realm_of(scope: MutableMapping[str, Any]) -> str | None:
    """The realm :func:`attach` recorded for this request, or ``None`` when no shell did.

    Args:
        scope: the ASGI scope.
    """
    state = scope.get("state")
    realm = state.get(REALM_KEY) if isinstance(state, dict) else None
    return realm if isinstance(realm, str) else None


def asgi_lookup(cache: TokenCache, exclude: Callable[[Any], bool] | None) -> Lookup:
    """The ASGI shell's hit test: an HTTP scope -> its cached principal, or ``None``.

    Revocations reach it at once: it reads the cache's one mapping, which is never rebound.

    Args:
        cache: the verified-token cache.
        exclude: tells the paths the shell does not authenticate, or ``None`` for none.
    """
    get = cache.entries.get
    clock = cache.clock
    unset = _UNSET

    def lookup(scope: Mapping[str, Any]) -> Principal | None:
        if exclude is not None and exclude(scope):
            return None
        value: Any = unset  # not None: a None value must still count as a header
        # A plain loop: measured cheaper than dict(headers) or map(itemgetter(0), headers).
        for name, found in scope["headers"]:
            if name == b"authorization":
                if value is not unset:  # two of them: the full path answers 400
                    return None
                value = found
            elif name == b"x-api-key":
                return None
        if type(value) is not bytes:
            return None
        entry = get(value[-TAIL:])
        if entry is None or entry[2] != value or not clock() < entry[0]:
            return None
        cache.hits += 1
        return entry[1]

    return lookup


def wsgi_lookup(cache: TokenCache, exclude: Callable[[Any], bool] | None) -> Lookup:
    """The WSGI shell's hit test: an environ -> its cached principal, or ``None``.

    Args:
        cache: the verified-token cache.
        exclude: tells the paths the shell does not authenticate, or ``None`` for none.
    """
    get = cache.entries.get
    clock = cache.clock

    def lookup(environ: Mapping[str, Any]) -> Principal | None:
        # Servers join a repeated header's values with commas, which no cache key contains.
        value = environ.get("HTTP_AUTHORIZATION")
        if (
            type(value) is not str
            or "HTTP_X_API_KEY" in environ
            or (exclude is not None and exclude(environ))
        ):
            return None
        try:
            key = value.encode("latin-1")  # a copy, as WSGI decoded it: no per-byte work
        except UnicodeEncodeError:  # not a WSGI header value: the full path answers
            return None
        entry = get(key[-TAIL:])
        if entry is None or entry[2] != key or not clock() < entry[0]:
            return None
        cache.hits += 1
        return entry[1]

    return lookup
