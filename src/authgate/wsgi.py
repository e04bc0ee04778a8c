"""The WSGI shell: sets ``environ["authgate.principal"]`` or answers the rejection itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ._responses import PHRASES, rejection
from ._shell import Shell
from .errors import AuthGateError
from .extract import credential_from_environ
from .principal import ANONYMOUS, Anonymous, Principal

__all__ = ["ENVIRON_KEY", "AuthGateWSGIMiddleware"]

ENVIRON_KEY = "authgate.principal"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AuthGateWSGIMiddleware(Shell[WSGIApp]):
    """Authenticate every request before the WSGI app sees it.

    Args:
        app: the WSGI app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: exact ``PATH_INFO`` values that skip authentication.
    """

    def _prepare(self) -> None:
        cache = self.authenticator.cache
        # with the cache off: an empty mapping, where every lookup misses
        self._entries: dict[bytes, tuple[float, Principal]] = (
            cache.entries if cache is not None else {}
        )
        self._clock: Callable[[], float] = cache.clock if cache is not None else time.time

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exclude_paths:
            return self.app(environ, start_response)
        # The hot path: a principal cached under the exact Authorization value. Servers join a
        # repeated header's values with commas, which no cached Bearer value contains; an
        # x-api-key beside it takes the full path (which answers 400). Only Bearer values are
        # looked up raw: API keys are cached as b"x-api-key:<key>". Cached keys are ASCII.
        value = environ.get("HTTP_AUTHORIZATION")
        if (
            type(value) is str
            and value.startswith("Bearer ")
            and value.isascii()
            and "HTTP_X_API_KEY" not in environ
        ):
            entry = self._entries.get(value.encode())
            if entry is not None and self._clock() < entry[0]:
                environ[ENVIRON_KEY] = entry[1]
                return self.app(environ, start_response)
        principal: Principal | Anonymous | None
        try:
            credential = credential_from_environ(environ, self._cookie)
            principal = (
                None if credential is None else self.authenticator.verify_credential(credential)
            )
        except AuthGateError as exc:
            return self._reject(exc, start_response)
        if principal is None:
            if self.required:
                return self._reject(None, start_response)
            principal = ANONYMOUS
        environ[ENVIRON_KEY] = principal
        return self.app(environ, start_response)

    def _reject(self, exc: AuthGateError | None, start_response: StartResponse) -> list[bytes]:
        status, headers, body = rejection(exc, self.authenticator.realm)
        start_response(f"{status} {PHRASES.get(status, 'Error')}", headers)
        return [body]
