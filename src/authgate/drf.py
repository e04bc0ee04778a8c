"""Django REST Framework: an authentication class and permission classes.

Settings (``AUTHGATE`` as for :mod:`authgate.django`)::

    AUTHGATE = {"AUTHENTICATOR": "myproject.auth.authenticator"}
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["authgate.drf.AuthGateAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }

and per view ``permission_classes = [IsAuthenticated, scopes("orders:read")]``.

A token from the opt-in cookie needs Django's CSRF token on unsafe methods, as DRF's
``SessionAuthentication`` does. A missing or bad token is a 401 with the RFC 6750 challenge
(``authenticate_header``), never DRF's 403; a malformed request a 400; an outage a 503 with
``Retry-After``; a server nonce (``DPoP(nonce_secret=...)``) goes out as ``DPoP-Nonce``. A
missing scope or role is a 403 naming it. With drf-spectacular installed, the OpenAPI schema
gets a ``bearerAuth`` security scheme for this class.
"""

from __future__ import annotations

from typing import Any

from ._config import required as names_required
from ._extras import extra_missing

try:
    from rest_framework import exceptions
    from rest_framework.authentication import BaseAuthentication, SessionAuthentication
    from rest_framework.permissions import BasePermission
    from rest_framework.request import Request
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.drf", "drf", exc) from exc

from ._responses import rejection
from .django import TokenUser, authenticate_request, authenticator, credential_headers
from .errors import AuthGateError, ServiceUnavailable
from .principal import Principal

__all__ = ["AuthGateAuthentication", "roles", "scopes"]

_ERROR = "_authgate_error"


class _Refused(exceptions.AuthenticationFailed):
    """A refused credential (400, 401, 403): DRF answers it with :meth:`authenticate_header`'s
    challenge."""

    def __init__(self, error: AuthGateError) -> None:
        super().__init__(error.message)
        self.status_code = error.status


class _Unavailable(exceptions.APIException):
    """An outage (503): no fault of the credential's, so no ``AuthenticationFailed``, which
    DRF answers with a 403 where a response carries no challenge."""

    status_code = 503
    default_code = "temporarily_unavailable"

    def __init__(self, error: ServiceUnavailable) -> None:
        super().__init__(error.message)
        self.wait = error.retry_after  # DRF answers it as Retry-After


_VIEW_HEADERS = {"cache-control": "Cache-Control", "dpop-nonce": "DPoP-Nonce"}
"""The refusal's headers DRF's exception handler does not set (its challenge and
``Retry-After`` it does), set through the view's ``headers`` as DRF's views set theirs."""


def _view_headers(request: Request) -> dict[str, str] | None:
    """The view's ``headers``, which ``APIView.finalize_response`` puts on its answer (and
    adds its ``Vary`` to the answer's)."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    headers = getattr(view, "headers", None)
    return headers if isinstance(headers, dict) else None


def _refuse(error: AuthGateError, request: Request) -> exceptions.APIException:
    """DRF's exception for ``error``; the headers of authgate's answer DRF would not send (a
    server nonce's ``DPoP-Nonce``, ``Cache-Control: no-store``) go on the view's response."""
    auth = authenticator()
    _, headers, _ = rejection(error, auth.realm, auth.dpop)
    extra = _view_headers(request)
    if extra is not None:
        extra.update(
            (_VIEW_HEADERS[name], value) for name, value in headers if name in _VIEW_HEADERS
        )
    if isinstance(error, ServiceUnavailable):
        return _Unavailable(error)
    return _Refused(error)


class AuthGateAuthentication(BaseAuthentication):
    """Authenticate DRF requests with authgate: ``request.user`` is a
    :class:`~authgate.django.TokenUser`, ``request.auth`` the :class:`~authgate.Principal`.

    A request without a credential is left to the next authentication class (or anonymous);
    :class:`authgate.django.AuthGateMiddleware` having verified it already is reused.
    """

    def authenticate(self, request: Request) -> tuple[TokenUser, Principal] | None:
        django_request = request._request
        extra = _view_headers(request)
        if extra is not None:  # every answer varies on the credentials (as the middleware's)
            vary = extra.get("Vary")
            names = credential_headers(authenticator())
            extra["Vary"] = ", ".join((vary, *names) if vary else names)
        try:
            principal = authenticate_request(django_request)
        except AuthGateError as error:
            setattr(django_request, _ERROR, error)
            raise _refuse(error, request) from None
        if principal is None:
            return None
        # DRF's views are CSRF-exempt: a token from the cookie, which a browser sends by
        # itself, gets Django's CSRF check here, as a session does (a header token skips it)
        SessionAuthentication().enforce_csrf(django_request)
        user = django_request.user
        assert isinstance(user, TokenUser)
        return user, principal

    def authenticate_header(self, request: Request) -> str:
        """The challenge of a 401: the Bearer one, with the error when a credential was bad
        (and the DPoP one, when DPoP is on)."""
        auth = authenticator()
        error = getattr(request._request, _ERROR, None)
        _, headers, _ = rejection(error, auth.realm, auth.dpop)
        return ", ".join(value for name, value in headers if name == "www-authenticate")


class _Requires(BasePermission):
    """Grants a request whose principal has every one of ``required`` (scopes or roles)."""

    kind = "scope"
    required: frozenset[str] = frozenset()

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        held = principal.scopes if self.kind == "scope" else principal.roles
        missing = sorted(self.required - held)
        if missing:
            self.message = f"missing {self.kind}: {' '.join(missing)}"
            return False
        return True


def _requirement(kind: str, names: tuple[str, ...]) -> type[BasePermission]:
    required = frozenset(names_required(names, kind, f"{kind}s"))
    label = "_".join(sorted(required))
    return type(f"Requires_{kind}_{label}", (_Requires,), {"kind": kind, "required": required})


def scopes(*names: str) -> type[BasePermission]:
    """A permission class granting requests whose principal has all these scopes.

    Args:
        names: the scopes.
    """
    return _requirement("scope", names)


def roles(*names: str) -> type[BasePermission]:
    """A permission class granting requests whose principal has all these roles.

    Args:
        names: the roles.
    """
    return _requirement("role", names)


try:  # drf-spectacular, when installed: the schema names the scheme
    from drf_spectacular.extensions import OpenApiAuthenticationExtension
except ModuleNotFoundError:  # pragma: no cover (an optional companion)
    pass
else:

    class AuthGateScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        """The ``bearerAuth`` security scheme of :class:`AuthGateAuthentication`."""

        target_class = "authgate.drf.AuthGateAuthentication"
        name = "bearerAuth"

        def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
            return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
