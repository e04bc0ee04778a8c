"""The WSGI shell: sets ``environ["authgate.principal"]`` or answers the rejection itself."""

from __future__ import annotations

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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exclude_paths:
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
