"""The ASGI cache-hit path: from a scope to a cached principal with no parsing at all.

A request that carries exactly one ``Authorization: Bearer …`` header, no ``x-api-key``, and a
value the verified-token cache holds (not past its deadline) is answered here: the principal is
attached to the scope and returned. Anything else, however ordinary, returns ``None`` with the
scope untouched, and the full path decides, including every 400.

Two implementations with one behaviour: :class:`PyHitPath` below, and a C twin in
``_speedups.c`` that the build compiles when it can. CPython needs about 3,000 instructions to
scan six header tuples in a Python loop (``dict(headers)`` costs more), against a budget of
about 6,000 for the whole middleware; the C scan costs about 150. The tests run both on the
same cases. ``AUTHGATE_NO_SPEEDUPS=1`` selects the Python one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from typing import Any

from .principal import Anonymous, Principal

__all__ = ["HitPath", "PyHitPath", "attach", "hit_path", "speedups"]

Entries = dict[bytes, tuple[float, Principal]]


class PyHitPath:
    """Attach and return the cached principal for an ASGI scope, or ``None`` for the full path.

    Args:
        entries: the verified-token cache's live mapping (read only, never written here).
        clock: the cache's clock; an entry is served while ``clock() < deadline``.
        exclude_paths: paths the middleware does not authenticate.
    """

    __slots__ = ("_clock", "_entries", "_exclude")

    def __init__(
        self, entries: Entries, clock: Callable[[], float], exclude_paths: frozenset[str]
    ) -> None:
        self._entries = entries
        self._clock = clock
        self._exclude = exclude_paths

    def __call__(self, scope: MutableMapping[str, Any]) -> Principal | None:
        if type(scope) is not dict:
            return None
        kind = scope.get("type")
        if type(kind) is not str or (kind != "http" and kind != "websocket"):
            return None
        if self._exclude:
            path = scope.get("path")
            if type(path) is not str or path in self._exclude:
                return None
        headers = scope.get("headers")
        if type(headers) is not list:
            return None
        authorization: object = None
        seen = False
        for item in headers:
            if (type(item) is not tuple and type(item) is not list) or len(item) != 2:
                return None
            name = item[0]
            if type(name) is not bytes:
                return None
            if name == b"authorization":
                if seen:
                    return None
                authorization, seen = item[1], True
            elif name == b"x-api-key":
                return None
        # API keys are cached as b"x-api-key:<key>": only Bearer values are looked up raw.
        if type(authorization) is not bytes or not authorization.startswith(b"Bearer "):
            return None
        entry = self._entries.get(authorization)
        if entry is None:
            return None
        deadline, principal = entry
        if not self._clock() < deadline:
            return None
        attach(scope, principal)
        return principal


def attach(scope: MutableMapping[str, Any], principal: Principal | Anonymous) -> None:
    """Set ``scope["user"]``, ``scope["auth"]`` and ``scope["state"]["principal"]``.

    Args:
        scope: the ASGI scope.
        principal: who the request is from.
    """
    scope["user"] = scope["auth"] = principal
    state = scope.get("state")
    if state is None:
        scope["state"] = {"principal": principal}
    else:
        state["principal"] = principal


HitPath = Callable[[MutableMapping[str, Any]], "Principal | None"]

Factory = Callable[[Entries, Callable[[], float], frozenset[str]], HitPath]


def _c_hit_path() -> Factory | None:
    if os.environ.get("AUTHGATE_NO_SPEEDUPS"):
        return None
    try:
        from ._speedups import HitPath as CHitPath
    except ImportError:
        return None
    return CHitPath


_CHitPath = _c_hit_path()

speedups: bool = _CHitPath is not None
"""Whether the C hit path is in use."""


def hit_path(
    entries: Entries, clock: Callable[[], float], exclude_paths: frozenset[str]
) -> HitPath:
    """The fastest hit path this interpreter has (the C one when it was built).

    Args:
        entries: the verified-token cache's live mapping.
        clock: the cache's clock.
        exclude_paths: paths the middleware does not authenticate.
    """
    if _CHitPath is not None:
        return _CHitPath(entries, clock, exclude_paths)
    return PyHitPath(entries, clock, exclude_paths)
