"""Which requests skip authentication: ``exclude_paths``, one rule for ASGI and WSGI.

An entry ``"/health"`` matches that path exactly (``/health/`` is another path); an entry
ending in ``/*`` matches its prefix and everything below it (``"/docs/*"``: ``/docs``,
``/docs/``, ``/docs/oauth2-redirect``, not ``/docsx``); ``"/*"`` matches everything.

The path matched is the one within the app: below the ASGI ``root_path`` (so a mounted app
excludes its own ``/docs``), WSGI's ``PATH_INFO``; never the query. A request spelled with
percent-escapes or dot segments (``/%68ealth``, ``/docs/../admin``), or one the server
rewrote (werkzeug turns ``//health`` into ``/health``), never matches: servers decode and
routers resolve such spellings differently, and an exclusion must mean exactly the path it
names. Such a request is simply authenticated. (Where the server reports the target as sent:
ASGI's ``raw_path``, WSGI's ``RAW_URI`` or ``REQUEST_URI``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["PathRules"]


class PathRules:
    """A compiled ``exclude_paths``.

    Args:
        entries: exact paths, or prefixes ending in ``/*``.
    """

    __slots__ = ("entries", "exact", "prefixes")

    def __init__(self, entries: Iterable[str]) -> None:
        if isinstance(entries, str | bytes):
            raise ConfigurationError("exclude_paths must be a list of paths, not one string")
        found = tuple(entries)
        for entry in found:
            _check(entry)
        self.entries = frozenset(found)
        self.exact = frozenset(e for e in found if not e.endswith("/*"))
        # "/docs/*" matches "/docs" exactly and "/docs/" + anything
        self.prefixes = tuple((e[:-2], e[:-1]) for e in found if e.endswith("/*"))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def matches(self, path: str) -> bool:
        """Whether the app-relative, decoded ``path`` is excluded (its spelling was checked
        by the caller: see :meth:`asgi` and :meth:`wsgi`).

        Args:
            path: the path within the app.
        """
        if path in self.exact:
            return True
        for bare, below in self.prefixes:
            if path.startswith(below) or path == bare:
                return _plain(path)
        return False

    def asgi(self) -> Callable[[Mapping[str, Any]], bool]:
        """The predicate over ASGI scopes."""
        matches = self.matches

        def excluded(scope: Mapping[str, Any]) -> bool:
            path = scope["path"]
            root = scope.get("root_path") or ""
            raw = scope.get("raw_path")
            if raw is not None:  # the target as sent must be the path itself, unescaped
                sent = raw.decode("latin-1") if isinstance(raw, bytes) else None
                if sent != path and root + str(sent) != path:
                    return False
            if root and path.startswith(root):  # ASGI: path includes root_path
                path = path[len(root) :]
            return matches(path)

        return excluded

    def wsgi(self) -> Callable[[Mapping[str, Any]], bool]:
        """The predicate over WSGI environs."""
        matches = self.matches

        def excluded(environ: Mapping[str, Any]) -> bool:
            path = environ.get("PATH_INFO", "")
            if not isinstance(path, str):
                return False
            raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
            # the target as sent must be the path itself: not escaped, not normalised
            if (
                isinstance(raw, str)
                and raw.startswith("/")
                and raw.split("?", 1)[0] != environ.get("SCRIPT_NAME", "") + path
            ):
                return False
            return matches(path)

        return excluded


def _plain(path: str) -> bool:
    """Whether ``path`` has no dot segment (``.`` or ``..``)."""
    if "/." not in path:
        return True
    return not any(segment in (".", "..") for segment in path.split("/"))


def _check(entry: Any) -> None:
    if not isinstance(entry, str) or not entry.startswith("/"):
        raise ConfigurationError("each of exclude_paths must be a path starting with '/'")
    if entry != "/" and entry.endswith("/") and not entry.endswith("/*"):
        raise ConfigurationError(
            f"exclude_paths entry {entry!r} never matches {entry.rstrip('/')!r}: write "
            f"{entry.rstrip('/')!r} for that path, or {entry + '*'!r} for everything below it"
        )
    stem = entry[:-2] if entry.endswith("/*") else entry
    if any(c in stem for c in "*?#%") or not entry.isprintable() or not _plain(stem or "/"):
        raise ConfigurationError(
            f"exclude_paths entry {entry!r}: a literal path, or a prefix ending in '/*' "
            "(no other '*', no query, no percent-escapes, no '.' or '..' segments)"
        )
