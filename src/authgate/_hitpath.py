"""The cache-hit path: from a request to a cached principal with no parsing at all.

One rule, for ASGI HTTP scopes and WSGI environs alike: the request carries exactly one
``Authorization`` value, no ``x-api-key``, and that raw value is a key of the verified-token
cache (keys are the canonical ``Bearer <token>`` line, see :func:`authgate._cache.cache_key`,
so a hit *is* a Bearer value of RFC 6750 syntax) whose deadline the cache's clock has not
reached. Then the principal is attached and the app called. Anything else, however ordinary,
goes to the shell's full path with the request untouched, and the full path decides,
including every 400.

Built once per shell (as structlog specialises its hot path at construction): each builder
returns the shell's whole entry point, a closure over the cache's bound ``get``, its clock and
the shell, so a hit costs one loop over the header pairs, one dict lookup and one clock read,
and no call besides the app's. The shells expose the closure as their ``__call__`` (see
:class:`authgate._shell.Shell`), so not even a method frame sits in between.

The ASGI entry is a plain function that returns the awaitable of whatever it hands the request
to (the app, or the full path), as Django's and asgiref's sync-to-async adapters do: a request
costs no coroutine of its own and its awaits pass through no frame of ours. It is marked as a
coroutine function (:func:`mark_async`), so servers that ask before serving it take it for the
ASGI 3 application it is.

What a hit writes is chosen by cost too: ``scope["user"]`` and ``scope["auth"]`` (Starlette's
names) and the request's ``state``. The realm goes into the state (:data:`REALM_KEY`), not the
scope: the scope already holds the server's keys and the framework's, and one key more than its
table holds makes the interpreter grow the table on every request (measured: about 1,100
instructions, a tenth of the hit path's cost, on a Starlette app in-process and under uvicorn).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, Protocol, TypeVar

from ._cache import TokenCache
from .principal import Anonymous, Principal

__all__ = [
    "ENVIRON_KEY",
    "REALM_KEY",
    "ASGIEntry",
    "WSGIEntry",
    "asgi_entry",
    "attach",
    "mark_async",
    "realm_of",
    "wsgi_entry",
]

ENVIRON_KEY: Final = "authgate.principal"
"""Where the WSGI shell puts the principal."""
REALM_KEY: Final = "authgate.realm"
"""Where, in ``scope["state"]``, the ASGI shell names the realm of the authenticator that let
the request in (read by :mod:`authgate.fastapi` for its challenges)."""

ASGIEntry = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application: ``await entry(scope, receive, send)``."""
WSGIEntry = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application: ``entry(environ, start_response)``."""


class _HasApp(Protocol):
    app: Any


_UNSET: Final = object()

F = TypeVar("F", bound=Callable[..., Any])


def mark_async(function: F) -> F:
    """Mark a plain function that returns an awaitable as a coroutine function, for the servers
    and frameworks that ask (``inspect.iscoroutinefunction`` from 3.12, with
    :func:`inspect.markcoroutinefunction`; ``asyncio.iscoroutinefunction`` before, with the
    marker asgiref and Django set). Before 3.12 ``inspect`` knows no marker: the shell's
    instances answer it themselves (see :class:`authgate.asgi.AuthGateMiddleware`).

    Args:
        function: the function.
    """
    if sys.version_info >= (3, 12):
        return inspect.markcoroutinefunction(function)
    from asyncio import coroutines  # here: the WSGI shell imports this module too

    function._is_coroutine = coroutines._is_coroutine  # type: ignore[attr-defined]
    return function


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


def asgi_entry(
    shell: _HasApp,
    full: ASGIEntry,
    cache: TokenCache | None,
    exclude: Callable[[Any], bool] | None,
    realm: str,
) -> ASGIEntry:
    """The ASGI shell's entry point: the hit path, falling back to ``full``.

    Revocations reach it at once: it reads the cache's one mapping, which is never rebound.

    Args:
        shell: the middleware (its ``app`` is read on every request, so it may be replaced).
        full: the full path, which authenticates (or lets through) and calls the app itself.
        cache: the verified-token cache, or ``None`` when it is off (every request is full).
        exclude: tells the paths the shell does not authenticate, or ``None`` for none.
        realm: the authenticator's challenge realm (see :func:`attach`).
    """
    if cache is None:
        return full
    get = cache.entries.get
    clock = cache.clock
    hits = cache.hits  # counted by next(hits): one builtin call, read at scrape time
    unset = _UNSET

    def entry(scope: MutableMapping[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        # Literals, not names: constants are the cheapest loads. Only HTTP: a WebSocket
        # handshake (once a connection) takes the full path, which answers it the same.
        if scope["type"] != "http" or (exclude is not None and exclude(scope)):
            return full(scope, receive, send)
        value: Any = unset  # not None: a None value must still count as a header
        # A plain loop: measured cheaper than dict(headers) or map(itemgetter(0), headers).
        for name, found in scope["headers"]:
            if name == b"authorization":
                if value is not unset:
                    return full(scope, receive, send)
                value = found
            elif name == b"x-api-key":
                return full(scope, receive, send)
        cached = get(value)
        if cached is None or not clock() < cached[0]:
            return full(scope, receive, send)
        next(hits)
        principal = cached[1]
        scope["user"] = scope["auth"] = principal  # attach(), written out: no call
        state = scope.get("state")
        if state is None:
            scope["state"] = {"principal": principal, "authgate.realm": realm}
        else:
            state["principal"] = principal
            state["authgate.realm"] = realm
        result: Awaitable[None] = shell.app(scope, receive, send)
        return result

    return mark_async(entry)


def wsgi_entry(
    shell: _HasApp,
    full: WSGIEntry,
    cache: TokenCache | None,
    exclude: Callable[[Any], bool] | None,
) -> WSGIEntry:
    """The WSGI shell's entry point: the hit path, falling back to ``full``.

    Args:
        shell: the middleware (its ``app`` is read on every request, so it may be replaced).
        full: the full path, which authenticates (or lets through) and calls the app itself.
        cache: the verified-token cache, or ``None`` when it is off (every request is full).
        exclude: tells the paths the shell does not authenticate, or ``None`` for none.
    """
    if cache is None:
        return full
    get = cache.entries.get
    clock = cache.clock
    hits = cache.hits

    def entry(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Servers join a repeated header's values with commas, which no cache key contains.
        value = environ.get("HTTP_AUTHORIZATION")
        if (
            type(value) is not str
            or not value.isascii()
            or "HTTP_X_API_KEY" in environ
            or (exclude is not None and exclude(environ))
        ):
            return full(environ, start_response)
        cached = get(value.encode())
        if cached is None or not clock() < cached[0]:
            return full(environ, start_response)
        next(hits)
        environ[ENVIRON_KEY] = cached[1]
        result: Iterable[bytes] = shell.app(environ, start_response)
        return result

    return entry
