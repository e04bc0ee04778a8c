"""FastAPI dependencies over :class:`~authgate.asgi.AuthGateMiddleware`.

The middleware authenticates; these dependencies read its result, enforce scopes and roles,
and declare the OpenAPI security scheme (HTTP Bearer, JWT), so ``/docs`` shows an Authorize
button and each route's required scopes::

    from fastapi import Depends, FastAPI, Security
    from authgate.fastapi import add_exception_handlers, authorize, require_scopes

    app = FastAPI()
    add_exception_handlers(app)  # refusals answer exactly as the middleware's

    @app.get("/orders")
    def orders(user: Principal = Security(authorize, scopes=["orders:read"])): ...

    @app.get("/invoices", dependencies=[Depends(require_scopes("invoices:read"))])
    def invoices(): ...

    protected = AuthGateMiddleware(app, auth, exclude_paths=PUBLIC_DOCS)

:data:`PUBLIC_DOCS` (``/docs/*``, ``/openapi.json``, ``/redoc``) keeps FastAPI's documentation
reachable without a token. :func:`document_api_keys` adds the ``x-api-key`` scheme to the
OpenAPI document as an alternative where an API-key provider is configured.

Refusals are :class:`AuthGateHTTPException` (an ``HTTPException``) carrying RFC 6750
``WWW-Authenticate`` headers and, as ``detail``, the middleware's body
``{"statusCode", "error", "message"}``; with :func:`add_exception_handlers` the body is that
shape itself, as the middleware answers, and so are Starlette's bare 401/403 refusals (e.g.
from ``@requires``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from ._config import required
from ._extras import extra_missing

try:
    from fastapi import Depends, HTTPException, Request, Security
    from fastapi.openapi.utils import get_openapi
    from fastapi.security import (
        APIKeyHeader,
        HTTPAuthorizationCredentials,
        HTTPBearer,
        SecurityScopes,
    )
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.fastapi", "fastapi", exc) from exc

from ._decisions import Refusals
from ._hitpath import Challenge, challenge_of
from ._responses import PHRASES, rejection
from .authenticator import Authenticator
from .dpop import DPoP
from .errors import AuthGateError, Forbidden, InsufficientScope, MissingCredential
from .principal import Principal

__all__ = [
    "PUBLIC_DOCS",
    "AuthGateHTTPException",
    "add_exception_handlers",
    "api_key_scheme",
    "authorize",
    "bearer_scheme",
    "current_principal",
    "document_api_keys",
    "require_roles",
    "require_scopes",
]

PUBLIC_DOCS: Final = ("/docs/*", "/openapi.json", "/redoc/*")
"""``exclude_paths`` entries that keep FastAPI's ``/docs``, ``/openapi.json`` and ``/redoc``
public (move them with the app's ``docs_url``, ``openapi_url`` and ``redoc_url``)."""

bearer_scheme: Final = HTTPBearer(
    bearerFormat="JWT",
    scheme_name="bearerAuth",
    description="A Bearer access token (verified by authgate).",
    auto_error=False,  # the middleware has already decided; this only documents the scheme
)
"""The OpenAPI security scheme every dependency here declares."""

api_key_scheme: Final = APIKeyHeader(
    name="x-api-key",
    scheme_name="apiKeyAuth",
    description="An API key (verified by authgate).",
    auto_error=False,
)
"""The ``x-api-key`` scheme :func:`document_api_keys` adds where API keys are accepted."""


class AuthGateHTTPException(HTTPException):
    """A refusal by these dependencies: an ``HTTPException`` that knows its authgate error.

    Args:
        error: the refusal (``None``: no credential).
        realm: the challenge realm.
        dpop: the DPoP settings of the authenticator, when DPoP is on.
    """

    def __init__(self, error: AuthGateError | None, realm: str, dpop: DPoP | None = None) -> None:
        status, headers, body = rejection(error, realm, dpop)
        self.error = error
        self.realm = realm
        self.body = body
        self.rejection_headers = headers
        challenge: dict[str, str] = {}
        for name, value in headers:  # several challenges in one field (RFC 9110 §11.6.1)
            if name in ("www-authenticate", "retry-after", "dpop-nonce"):
                challenge[name] = f"{challenge[name]}, {value}" if name in challenge else value
        super().__init__(status_code=status, detail=json.loads(body), headers=challenge)


_refusals = Refusals()  # the dependencies' refusals: INFO on authgate.decisions


def _refuse(error: AuthGateError | None, request: Request) -> AuthGateHTTPException:
    """The refusal to raise, logged once like the middleware's."""
    _refusals.refused(error or MissingCredential(), None, path=request.url.path)
    challenge = _challenge(request)
    return AuthGateHTTPException(error, challenge.realm, challenge.dpop)


def _challenge(request: Request) -> Challenge:
    """The challenge of the authenticator that guards this app (realm ``api`` when none is
    found)."""
    return challenge_of(request.scope) or Challenge("api")


def current_principal(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
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


def authorize(
    security_scopes: SecurityScopes,
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
) -> Principal:
    """For ``Security(authorize, scopes=[...])``: the principal, holding every listed scope
    (which OpenAPI lists on the route's security requirement).

    Args:
        security_scopes: the scopes FastAPI collected for the route.
        request: the current request.
    """
    return _check(request, security_scopes.scopes)


def require_scopes(*scopes: str) -> Callable[..., Principal]:
    """A ``Depends`` dependency requiring every one of ``scopes`` (listed in OpenAPI).

    Args:
        scopes: the required scope names.
    """
    required(scopes, "scope", "require_scopes")

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(
            bearer_scheme, scopes=list(scopes)
        ),
    ) -> Principal:
        return _check(request, scopes)

    return dependency


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A ``Depends`` dependency requiring every one of ``roles`` (``Principal.roles``, filled
    from the provider's ``role_claims=``); 403 without them.

    Args:
        roles: the required role names.
    """
    required(roles, "role", "require_roles")

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    ) -> Principal:
        principal = current_principal(request)
        missing = principal.missing_roles(*roles)
        if missing:
            refused = Forbidden(f"missing role: {' '.join(missing)}")
            raise _refuse(refused, request)
        return principal

    return dependency


# -- one answer shape everywhere --------------------------------------------------------------

_BARE: Final = {401: MissingCredential, 403: Forbidden}


def add_exception_handlers(app: Any) -> None:
    """Make refusals inside the app answer exactly as the middleware does: the body
    ``{"statusCode", "error", "message"}``, ``WWW-Authenticate``, ``cache-control: no-store``.

    Covers these dependencies' refusals, and Starlette's and FastAPI's bare 401 and 403 (an
    ``HTTPException`` whose detail is just the reason phrase, as ``@requires`` raises). Any
    other ``HTTPException`` keeps FastAPI's default answer.

    Args:
        app: the FastAPI (or Starlette) app.
    """
    app.add_exception_handler(StarletteHTTPException, _answer)


async def _answer(request: Request, exc: Exception) -> Response:
    from fastapi.exception_handlers import http_exception_handler

    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, AuthGateHTTPException):
        status, headers, body = exc.status_code, exc.rejection_headers, exc.body
    elif exc.status_code in _BARE and exc.detail == PHRASES[exc.status_code]:
        challenge = _challenge(request)
        status, headers, body = rejection(_BARE[exc.status_code](), *challenge)
    else:
        return await http_exception_handler(request, exc)
    answer = Response(body, status_code=status, media_type="application/json")
    for name, value in headers:
        if name not in ("content-type", "content-length"):
            answer.headers.append(name, value)
    return answer


# -- OpenAPI ----------------------------------------------------------------------------------


def document_api_keys(app: Any, authenticator: Authenticator) -> None:
    """Where ``authenticator`` accepts API keys, add the ``x-api-key`` header scheme to the
    app's OpenAPI document, as an alternative to Bearer on every route that declares it.

    Args:
        app: the FastAPI app.
        authenticator: the authenticator guarding it.
    """
    if not any(provider.accepts_api_keys for provider in authenticator.providers):
        return

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            _add_api_key_scheme(schema)
            app.openapi_schema = schema
        document: dict[str, Any] = app.openapi_schema
        return document

    app.openapi = openapi


def _add_api_key_scheme(schema: dict[str, Any]) -> None:
    name = api_key_scheme.scheme_name
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[name] = api_key_scheme.model.model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and any(bearer_scheme.scheme_name in item for item in security):
                operation["security"] = [*security, {name: []}]
