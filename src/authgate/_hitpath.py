"""The cache-hit path: from a request to a cached principal with no parsing at all.

One rule, for ASGI scopes and WSGI environs alike: the request carries exactly one
``Authorization`` value, no ``x-api-key``, and that raw value is a key of the verified-token
cache (keys are the canonical ``Bearer <token>`` line, see :func:`authgate._cache.cache_key`,
so a hit *is* a Bearer value of RFC 6750 syntax) whose deadline the cache's clock has not
reached. Then the principal is attached and returned. Anything else, however ordinary, returns
``None`` with the request untouched, and the full path decides, including every 400.

Built once per shell from the cache (as structlog specialises its hot path at construction):
the lookups it needs are bound methods and constants captured in two small closures, so a hit
costs one loop over the header pairs, one dict lookup and one clock read.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Final

from ._cache import TokenCache
from .principal import Anonymous, Principal

__all__ = ["ENVIRON_KEY", "REALM_KEY", "HitPath", "attach", "build_hit_paths"]

ENVIRON_KEY: Final = "authgate.principal"
"""Where the WSGI shell puts the principal."""
REALM_KEY: Final = "authgate.realm"
"""Where the ASGI shell names the realm of the authenticator that let the request in."""

HitPath = Callable[[Any], "Principal | None"]
"""``hit(scope_or_environ) -> principal | None``: ``None`` sends the request the full path."""

_UNSET: Final = object()


def attach(scope: MutableMapping[str, Any], principal: Principal | Anonymous, realm: str) -> None:
    """Set ``scope["user"]``, ``scope["auth"]``, ``scope["state"]["principal"]`` and
    ``scope["authgate.realm"]`` (read by :mod:`authgate.fastapi` for its challenges).

    Args:
        scope: the ASGI scope.
        principal: who the request is from.
        realm: the authenticator's challenge realm.
    """
    scope["user"] = scope["auth"] = principal
    scope[REALM_KEY] = realm
    state = scope.get("state")
    if state is None:
        scope["state"] = {"principal": principal}
    else:
        state["principal"] = principal


def _miss(request: Any) -> None:
    """The hit path when the verified-token cache is off."""
    return None


def build_hit_paths(
    cache: TokenCache | None, exclude: Callable[[str], bool] | None, realm: str = "api"
) -> tuple[HitPath, HitPath]:
    """The ``(asgi, wsgi)`` hit paths over ``cache``'s live entries and clock.

    Revocations reach them at once: they read the cache's one mapping, which is never rebound.

    Args:
        cache: the verified-token cache, or ``None`` when it is off (every request misses).
        exclude: tells the paths the shell does not authenticate (they take the full path,
            which lets them through), or ``None`` when there are none.
        realm: the authenticator's challenge realm (see :func:`attach`).
    """
    if cache is None:
        return _miss, _miss
    get = cache.entries.get
    clock = cache.clock
    unset = _UNSET

    def asgi(scope: MutableMapping[str, Any]) -> Principal | None:
        # literals, not names: constants are the cheapest loads in the loop below
        if scope["type"] not in {"http", "websocket"} or (
            exclude is not None and exclude(scope["path"])
        ):
            return None
        value: Any = unset  # not None: a None value must still count as a header
        # A plain loop: measured cheaper than dict(headers) or map(itemgetter(0), headers).
        for name, found in scope["headers"]:
            if name == b"authorization":
                if value is not unset:
                    return None
                value = found
            elif name == b"x-api-key":
                return None
        entry = get(value)
        if entry is None or not clock() < entry[0]:
            return None
        principal = entry[1]
        scope["user"] = scope["auth"] = principal
        scope["authgate.realm"] = realm
        state = scope.get("state")
        if state is None:
            scope["state"] = {"principal": principal}
        else:
            state["principal"] = principal
        return principal

    def wsgi(environ: dict[str, Any]) -> Principal | None:
        # Servers join a repeated header's values with commas, which no cache key contains.
        value = environ.get("HTTP_AUTHORIZATION")
        if (
            type(value) is not str
            or not value.isascii()
            or "HTTP_X_API_KEY" in environ
            or (exclude is not None and exclude(environ.get("PATH_INFO", "")))
        ):
            return None
        entry = get(value.encode())
        if entry is None or not clock() < entry[0]:
            return None
        principal = entry[1]
        environ[ENVIRON_KEY] = principal
        return principal

    return asgi, wsgi
