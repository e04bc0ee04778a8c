"""FastAPI dependencies over :class:`~authgate.asgi.AuthGateMiddleware`.

The middleware authenticates; these dependencies read its result and enforce scopes::

    from fastapi import Depends, Security
    from authgate.fastapi import authorize, require_scopes

    @app.get("/orders")
    def orders(user: Principal = Security(authorize, scopes=["orders:read"])): ...

    @app.get("/invoices", dependencies=[Depends(require_scopes("invoices:read"))])
    def invoices(): ...

Refusals are ``HTTPException``s carrying RFC 6750 ``WWW-Authenticate`` headers and, as
``detail``, the providers' body shape ``{"statusCode", "error", "message"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from fastapi import HTTPException, Request
from fastapi.security import SecurityScopes

from ._hitpath import REALM_KEY
from ._responses import rejection
from .errors import AuthGateError, Forbidden, InsufficientScope
from .principal import Principal

__all__ = ["authorize", "current_principal", "require_roles", "require_scopes"]


def _realm(request: Request) -> str:
    """The realm of the authenticator that guards this app (``api`` when none is found)."""
    realm = request.scope.get(REALM_KEY)
    return realm if isinstance(realm, str) else "api"


def _refuse(exc: AuthGateError | None, request: Request) -> HTTPException:
    status, headers, body = rejection(exc, _realm(request))
    challenge = {k: v for k, v in headers if k in ("www-authenticate", "retry-after")}
    return HTTPException(status_code=status, detail=json.loads(body), headers=challenge)


def current_principal(request: Request) -> Principal:
    """The authenticated principal; 401 when the request is anonymous.

    Args:
        request: the current request.
    """
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise _refuse(None, request)
    return user


def _check(request: Request, scopes: Iterable[str]) -> Principal:
    principal = current_principal(request)
    required = tuple(scopes)
    missing = principal.missing_scopes(*required)
    if missing:
        refused = InsufficientScope(f"missing scope: {' '.join(missing)}", scopes=required)
        raise _refuse(refused, request)
    return principal


def authorize(security_scopes: SecurityScopes, request: Request) -> Principal:
    """For ``Security(authorize, scopes=[...])``: the principal, holding every listed scope.

    Args:
        security_scopes: the scopes FastAPI collected for the route.
        request: the current request.
    """
    return _check(request, security_scopes.scopes)


def require_scopes(*scopes: str) -> Callable[[Request], Principal]:
    """A ``Depends`` dependency requiring every one of ``scopes``.

    Args:
        scopes: the required scope names.
    """

    def dependency(request: Request) -> Principal:
        return _check(request, scopes)

    return dependency


def require_roles(*roles: str) -> Callable[[Request], Principal]:
    """A ``Depends`` dependency requiring every one of ``roles`` (``Principal.roles``, filled
    from the provider's ``role_claims=``); 403 without them.

    Args:
        roles: the required role names.
    """

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        missing = principal.missing_roles(*roles)
        if missing:
            raise _refuse(Forbidden(f"missing role: {' '.join(missing)}"), request)
        return principal

    return dependency
