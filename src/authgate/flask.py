"""Flask: an extension putting the principal on ``flask.g``, and decorators for scopes and roles.

::

    app = Flask(__name__)
    AuthGate(app, authenticator)          # or AuthGate().init_app(app, authenticator)

    @app.get("/orders")
    @require_scopes("orders:read")
    def orders():
        return {"user": g.principal.identity}

Each request's credential is verified before the view; ``g.principal`` is its
:class:`~authgate.Principal` (``None`` without a credential). A bad credential, and a view's
missing credential, scope or role, are answered as everywhere in authgate: RFC 6750 status,
``WWW-Authenticate`` and the JSON body, through Flask's error handling. With
``required=True`` every request needs a credential (``exclude_paths`` aside).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._config import required as names_required
from ._extras import extra_missing

try:
    from flask import Flask, Response, current_app, g, request
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.flask", "flask", exc) from exc

from ._paths import PathRules
from ._responses import PHRASES, rejection
from ._shell import varies_on
from .authenticator import Authenticator
from .errors import (
    AuthGateError,
    ConfigurationError,
    Forbidden,
    InsufficientScope,
    MissingCredential,
)
from .extract import credential_from_environ
from .principal import Principal
from .wsgi import bound_to_environ

__all__ = ["AuthGate", "current_principal", "require_auth", "require_roles", "require_scopes"]

F = TypeVar("F", bound=Callable[..., Any])


class AuthGate:
    """The Flask extension.

    Args:
        app: the app (or call :meth:`init_app` later).
        authenticator: the configured :class:`~authgate.Authenticator`.
        required: every request needs a credential (else only the decorated views do).
        exclude_paths: paths that skip authentication (``/health``, ``/docs/*``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        authenticator: Authenticator | None = None,
        *,
        required: bool = False,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        if not isinstance(required, bool):
            raise ConfigurationError("required must be True or False")
        self.required = required
        self._rules = PathRules(exclude_paths)
        self._excluded = self._rules.wsgi() if self._rules else None
        self.authenticator = authenticator
        if app is not None:
            self.init_app(app, authenticator)

    def init_app(self, app: Flask, authenticator: Authenticator | None = None) -> None:
        """Guard ``app``.

        Args:
            app: the Flask app.
            authenticator: the authenticator (when not given to the constructor).
        """
        authenticator = authenticator or self.authenticator
        if not isinstance(authenticator, Authenticator):
            raise ConfigurationError("AuthGate needs an authgate.Authenticator")
        self.authenticator = authenticator
        app.extensions["authgate"] = self
        app.before_request(self._authenticate)
        app.after_request(self._vary)
        app.register_error_handler(AuthGateError, self._answer)

    def _authenticate(self) -> None:
        auth = self.authenticator
        assert auth is not None
        environ = request.environ
        g.principal = None
        if self._excluded is not None and self._excluded(environ):
            return
        credential = None
        try:
            credential = credential_from_environ(environ, auth.cookie, auth.token_header)
            if credential is not None and credential.kind == "bearer":
                credential = bound_to_environ(credential, environ, auth)
            if credential is not None:
                g.principal = auth.verify_credential(credential)
                g.authgate_varies_on = varies_on(credential)
            elif self.required:
                raise MissingCredential()
        except AuthGateError as exc:
            auth.refused(exc, credential, path=request.path)
            raise

    @staticmethod
    def _vary(response: Response) -> Response:
        """The response to a credential HTTP caches do not know varies on its header (see
        :func:`authgate._shell.varies_on`)."""
        header = g.get("authgate_varies_on")
        if header is not None:
            response.vary.add(header)
        return response

    def _answer(self, exc: AuthGateError) -> Response:
        auth = self.authenticator
        assert auth is not None
        status, headers, body = rejection(exc, auth.realm, auth.dpop)
        response = Response(body, status=status, content_type="application/json")
        response.status = f"{status} {PHRASES.get(status, 'Error')}"
        for name, value in headers:
            if name not in ("content-type", "content-length"):
                response.headers.add(name, value)
        return response


def current_principal() -> Principal | None:
    """The principal of the request being handled, ``None`` without a credential."""
    principal = g.get("principal")
    return principal if isinstance(principal, Principal) else None


def _guarded(check: Callable[[Principal], None]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if "authgate" not in current_app.extensions:
                raise ConfigurationError("these decorators need AuthGate(app, authenticator)")
            principal = current_principal()
            if principal is None:
                raise MissingCredential()
            check(principal)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def require_auth(view: F) -> F:
    """The view needs a credential (401 without one)."""
    return _guarded(lambda principal: None)(view)


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """The view needs a credential with all these scopes (403 ``insufficient_scope`` else).

    Args:
        scopes: the scopes.
    """
    required = names_required(scopes, "scope", "require_scopes")

    def check(principal: Principal) -> None:
        missing = principal.missing_scopes(*required)
        if missing:
            raise InsufficientScope(f"missing scope: {' '.join(missing)}", scopes=missing)

    return _guarded(check)


def require_roles(*roles: str) -> Callable[[F], F]:
    """The view needs a credential with all these roles (403 else).

    Args:
        roles: the roles.
    """
    required = names_required(roles, "role", "require_roles")

    def check(principal: Principal) -> None:
        missing = sorted(set(required) - principal.roles)
        if missing:
            raise Forbidden(f"missing role: {' '.join(missing)}")

    return _guarded(check)
