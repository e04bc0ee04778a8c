"""The WSGI shell: sets ``environ["authgate.principal"]`` or answers the rejection itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._hitpath import ENVIRON_KEY, TAIL_SLICE
from ._paths import PathRules
from ._responses import PHRASES, rejection
from ._shell import Shell, add_vary, varies_on
from .authenticator import Authenticator
from .dpop import request_uri_wsgi
from .errors import AuthGateError
from .extract import Credential, credential_from_environ, with_request
from .mtls import certificate_wsgi

__all__ = ["ENVIRON_KEY", "AuthGateWSGIMiddleware", "bound_to_environ"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _varying(start_response: StartResponse, header: str) -> StartResponse:
    """``start_response``, adding ``header`` to the response's ``Vary``."""

    def varying_start_response(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        headers = list(headers)
        for i, (name, value) in enumerate(headers):
            if name.lower() == "vary":
                headers[i] = (name, add_vary(value, header))
                break
        else:
            headers.append(("Vary", header))
        return start_response(status, headers, *rest)

    return varying_start_response


def bound_to_environ(
    credential: Credential, environ: Mapping[str, Any], authenticator: Authenticator
) -> Credential:
    """A token with what proves its binding in a WSGI request: for DPoP, the method and URI
    its proof must name; the client certificate's thumbprint, when certificates are
    configured (a proxy's header: WSGI has no TLS extension).

    Args:
        credential: the extracted Bearer credential.
        environ: the WSGI environ.
        authenticator: the authenticator (its ``dpop`` and ``client_certificates``).
    """
    certificates = authenticator.client_certificates
    if certificates is not None:
        thumbprint = certificate_wsgi(environ, certificates)
        if thumbprint is not None:
            credential = credential._replace(certificate=thumbprint)
    dpop = authenticator.dpop
    if credential.proof is None or dpop is None:
        return credential
    method = str(environ.get("REQUEST_METHOD") or "GET")
    return with_request(credential, method, request_uri_wsgi(environ, dpop)) or credential


class AuthGateWSGIMiddleware(Shell[WSGIApp]):
    """Authenticate every request before the WSGI app sees it.

    Args:
        app: the WSGI app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: ``PATH_INFO`` values that skip authentication: exact (``/health``), or
            a prefix and everything below it (``/docs/*``).
    """

    _text_keys = True

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        get = self._get
        excluded = self._excluded
        # the hit path (see _hitpath); servers join a repeated header's values with commas,
        # which no cache key contains.
        value = environ.get("HTTP_AUTHORIZATION")
        own = self._own_environ
        if (
            get is not None
            and type(value) is str
            and "HTTP_X_API_KEY" not in environ
            and (own is None or own not in environ)
            and (excluded is None or not excluded(environ))
        ):
            entry = get(value[TAIL_SLICE])  # keys are the str WSGI decoded (use_text_keys)
            if entry is not None and entry[2] == value and self._clock() < entry[0]:
                self._cache.hits += 1
                environ[ENVIRON_KEY] = entry[1]
                return self.app(environ, start_response)
        return self._full(environ, start_response)

    def _predicate(self, rules: PathRules) -> Callable[[Mapping[str, Any]], bool]:
        return rules.wsgi()

    def _full(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The full path: authenticate (or let an excluded path through), then the app."""
        if not self._is_excluded(environ):
            credential = None
            try:
                credential = credential_from_environ(environ, self._cookie, self._token_header)
                if credential is not None and credential.kind == "bearer":
                    credential = bound_to_environ(credential, environ, self.authenticator)
                environ[ENVIRON_KEY] = self._settle(
                    None if credential is None else self.authenticator.verify_credential(credential)
                )
            except AuthGateError as exc:
                path = environ.get("PATH_INFO")
                self.authenticator.refused(
                    exc, credential, path=path if isinstance(path, str) else None
                )
                status, headers, body = rejection(
                    exc, self.authenticator.realm, self.authenticator.dpop
                )
                start_response(f"{status} {PHRASES.get(status, 'Error')}", headers)
                return [body]
            header = varies_on(credential)
            if header is not None:  # a credential header caches do not know: see varies_on
                return self.app(environ, _varying(start_response, header))
        return self.app(environ, start_response)
