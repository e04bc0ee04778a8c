"""Django: a middleware that makes a token's principal Django's ``request.user``.

Settings::

    AUTHGATE = {
        "AUTHENTICATOR": "myproject.auth.authenticator",  # an Authenticator, or its dotted path
        "PERMISSIONS": {"orders:read": ["orders.view_order"]},  # optional, see TokenUser
    }
    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "authgate.django.AuthGateMiddleware",  # after Django's own
    ]

A request with a credential (``Authorization: Bearer``/``DPoP``, ``x-api-key``) is that
credential's user: ``request.user`` is a :class:`TokenUser` (``is_authenticated``,
``get_username()``, ``has_perm()``: ``@login_required``, ``@permission_required``,
``LoginRequiredMixin`` and ``PermissionRequiredMixin`` work unchanged) and ``request.auth`` its
:class:`~authgate.Principal`. A bad credential is answered as everywhere in authgate (RFC 6750
status, ``WWW-Authenticate``, a JSON body). A request without one keeps whatever Django's own
authentication made of it (the admin's session users, ``AnonymousUser``). A request
authenticated by a header needs no CSRF token (a browser never sends it by itself); one by the
opt-in cookie (:class:`~authgate.TokenCookie`) still does, and is refused (403) on a request
from another site's page whatever the view.

The middleware is sync and async capable: under ASGI it verifies without blocking the loop.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ._extras import extra_missing

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpRequest, HttpResponse
    from django.utils.cache import patch_vary_headers
    from django.utils.module_loading import import_string
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.django", "django", exc) from exc

from ._responses import PHRASES, rejection
from .authenticator import Authenticator
from .errors import AuthGateError
from .extract import Credential, credential_from_environ, with_request
from .mtls import certificate_wsgi
from .principal import Principal

__all__ = ["AuthGateMiddleware", "TokenUser", "authenticate_request", "authenticator"]

Permissions = Mapping[str, Iterable[str]] | Callable[[Principal], Iterable[str]]


class TokenUser:
    """The user a token (or API key) stands for, as Django's auth machinery reads a user.

    Its permissions are the principal's scopes and roles, each as it is (a scope
    ``orders.view_order`` is that permission), plus what ``AUTHGATE["PERMISSIONS"]`` maps them
    to: a mapping from scope or role to permission names, or a callable from the principal to
    permission names. It is not a database user and cannot be saved; its ``pk`` (and ``id``)
    is an opaque, stable id of who it is (provider, issuer, subject), so what keys per user on
    ``request.user.pk`` (DRF's ``UserRateThrottle`` and ``ScopedRateThrottle``, caches) keeps
    users apart. It is no database key.

    Args:
        principal: the verified principal.
        permissions: the ``PERMISSIONS`` setting.
    """

    is_active = True
    is_staff = False
    is_superuser = False
    is_authenticated = True
    is_anonymous = False

    def __init__(self, principal: Principal, permissions: Permissions | None = None) -> None:
        self.principal = principal
        granted = set(principal.scopes) | set(principal.roles)
        granted.discard("authenticated")
        if callable(permissions):
            granted.update(permissions(principal))
        elif permissions is not None:
            for name in list(granted):
                granted.update(permissions.get(name, ()))
        self._permissions = frozenset(granted)

    @functools.cached_property
    def pk(self) -> str:
        """32 hex digits of the provider, issuer and subject: safe in any cache key
        (memcached's too), whatever the subject holds; JSON (ASCII, null apart from
        ``"null"``) tells every one apart. Computed when read (DRF's throttles), not for every
        request."""
        return hashlib.sha256(json.dumps(self._who()).encode()).hexdigest()[:32]

    @property
    def id(self) -> str:
        """:attr:`pk`."""
        return self.pk

    @property
    def username(self) -> str:
        """The principal's identity (its subject, or its key's name)."""
        return self.principal.identity

    def get_username(self) -> str:
        return self.username

    def natural_key(self) -> tuple[str]:
        return (self.username,)

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"TokenUser({self.username!r}, provider={self.principal.provider!r})"

    def _who(self) -> tuple[str, str | None, str]:
        """Whose user this is: a subject is unique only within its issuer (OIDC Core §2), and
        one provider may accept several issuers (a tenant each)."""
        principal = self.principal
        return (principal.provider, principal.issuer, principal.subject)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUser) and other._who() == self._who()

    def __hash__(self) -> int:
        return hash(self._who())

    def get_all_permissions(self, obj: object = None) -> set[str]:
        return set(self._permissions)

    def get_user_permissions(self, obj: object = None) -> set[str]:
        return set(self._permissions)

    def get_group_permissions(self, obj: object = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return perm in self._permissions

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        if isinstance(perm_list, str):
            raise ValueError("perm_list must be an iterable of permissions")
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return any(perm.startswith(app_label + ".") for perm in self._permissions)

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("a TokenUser is not a database user: it cannot be saved")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("a TokenUser is not a database user: it cannot be deleted")

    def set_password(self, raw_password: str) -> None:
        raise NotImplementedError("a TokenUser has no password: its identity provider has")

    def check_password(self, raw_password: str) -> bool:
        raise NotImplementedError("a TokenUser has no password: its identity provider has")

    @property
    def groups(self) -> Any:
        """No groups (an empty manager, as ``AnonymousUser``'s): its rights are its
        permissions."""
        return _empty_manager("Group")

    @property
    def user_permissions(self) -> Any:
        """No database permissions (an empty manager, as ``AnonymousUser``'s): its rights are
        :meth:`get_all_permissions`."""
        return _empty_manager("Permission")


def _check_order(ours: type) -> None:
    """Refuse a ``MIDDLEWARE`` list where Django's ``AuthenticationMiddleware`` (or a
    subclass) comes after this one: it would set ``request.user`` again, to the session's
    user or ``AnonymousUser``, while ``request.auth`` is the token's principal; or where
    Django's site cache answers before this one (``FetchFromCacheMiddleware``, or
    ``CacheMiddleware``, which also fetches): its pages would skip the token's check."""

    def djangos(kind: type) -> bool:  # known by name: the auth app may not be installed
        return any(
            c.__module__ == "django.contrib.auth.middleware"
            and c.__name__ == "AuthenticationMiddleware"
            for c in kind.__mro__
        )

    def fetches(kind: type) -> bool:  # Django's site cache answering from the cache
        return any(
            c.__module__ == "django.middleware.cache"
            and c.__name__ in ("FetchFromCacheMiddleware", "CacheMiddleware")
            for c in kind.__mro__
        )

    mine: list[int] = []
    theirs: list[int] = []
    cached: list[int] = []
    for i, name in enumerate(getattr(settings, "MIDDLEWARE", None) or ()):
        try:
            loaded = import_string(name) if isinstance(name, str) else None
        except Exception:  # noqa: S112  (Django reports a middleware it cannot load)
            continue
        if isinstance(loaded, type):
            if issubclass(loaded, ours):
                mine.append(i)
            elif djangos(loaded):
                theirs.append(i)
            elif fetches(loaded):
                cached.append(i)
    if mine and theirs and max(theirs) > min(mine):
        raise ImproperlyConfigured(
            "put authgate.django.AuthGateMiddleware after "
            "django.contrib.auth.middleware.AuthenticationMiddleware in MIDDLEWARE: after it, "
            "Django's would replace each token's user with the session's"
        )
    if mine and cached and min(cached) < min(mine):
        raise ImproperlyConfigured(
            "put django.middleware.cache.FetchFromCacheMiddleware after "
            "authgate.django.AuthGateMiddleware in MIDDLEWARE (last, as Django's docs say): "
            "before it, a cached page is served before the token is checked, to an expired or "
            "signed-out token too"
        )


def _empty_manager(model: str) -> Any:
    """An empty manager of ``django.contrib.auth``'s ``model`` (imported only when read: a
    project without the auth app never touches it)."""
    from django.contrib.auth import models
    from django.db.models.manager import EmptyManager

    return EmptyManager(getattr(models, model))


def _setting(name: str, default: Any = None) -> Any:
    config = getattr(settings, "AUTHGATE", None)
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(
            'authgate: set AUTHGATE = {"AUTHENTICATOR": "<dotted path to an Authenticator>"}'
        )
    return config.get(name, default)


_loaded: dict[Any, Authenticator] = {}  # a dotted path or factory -> what it gave


def authenticator() -> Authenticator:
    """The :class:`~authgate.Authenticator` ``AUTHGATE["AUTHENTICATOR"]`` names (loaded once)."""
    configured = _setting("AUTHENTICATOR")
    if isinstance(configured, Authenticator):
        return configured
    try:
        found = _loaded.get(configured)
    except TypeError:  # unhashable: refused below
        found = None
    if found is not None:
        return found
    value = import_string(configured) if isinstance(configured, str) else configured
    if callable(value) and not isinstance(value, Authenticator):
        value = value()  # a factory
    if not isinstance(value, Authenticator):
        raise ImproperlyConfigured(
            'AUTHGATE["AUTHENTICATOR"] must be an authgate.Authenticator, its dotted path, or a '
            f"function returning one; got {type(value).__name__}"
        )
    _loaded[configured] = value
    return value


def _permissions() -> Permissions | None:
    value = _setting("PERMISSIONS")
    if value is not None and not (callable(value) or isinstance(value, Mapping)):
        raise ImproperlyConfigured(
            'AUTHGATE["PERMISSIONS"] must map scopes or roles to permissions, or be a callable'
        )
    return value  # type: ignore[no-any-return]


def _credential(request: HttpRequest, auth: Authenticator) -> Credential | None:
    """The request's credential, with what proves a binding (DPoP, client certificate)."""
    credential = credential_from_environ(request.META, auth.cookie, auth.token_header)
    if credential is None or credential.kind != "bearer":
        return credential
    if auth.client_certificates is not None:
        thumbprint = certificate_wsgi(request.META, auth.client_certificates)
        if thumbprint is not None:
            credential = credential._replace(certificate=thumbprint)
    if credential.proof is not None and auth.dpop is not None:
        base = auth.dpop.base_url
        if base is not None:
            uri = base + request.path_info
        else:  # not build_absolute_uri(request.path): it reads '//evil.example/x' as that host
            uri = f"{request.scheme}://{request.get_host()}{request.path}"
        credential = with_request(credential, request.method or "GET", uri) or credential
    return credential


def _answer(exc: AuthGateError, auth: Authenticator) -> HttpResponse:
    status, headers, body = rejection(exc, auth.realm, auth.dpop)
    response = HttpResponse(body, status=status, content_type="application/json")
    response.reason_phrase = PHRASES.get(status, "Error")
    for name, value in headers:
        if name == "www-authenticate" and name in response.headers:
            response.headers[name] += ", " + value  # both challenges (RFC 9110 §11.6.1)
        elif name not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _attach(request: HttpRequest, principal: Principal, credential: Credential) -> None:
    user = TokenUser(principal, _permissions())

    async def auser() -> TokenUser:  # Django 5's async accessor
        return user

    request.user = user
    request.auser = auser
    request.auth = principal
    request.META["authgate.principal"] = principal
    if not credential.from_cookie:  # a browser never sends a header credential by itself
        request._dont_enforce_csrf_checks = True


def authenticate_request(request: HttpRequest) -> Principal | None:
    """Verify the request's credential now (the middleware's own step, for code outside it):
    its principal, ``None`` without a credential; raises ``AuthGateError`` when refused.

    Args:
        request: the Django request.
    """
    found = getattr(request, "auth", None)
    if isinstance(found, Principal):
        return found
    auth = authenticator()
    credential = _credential(request, auth)
    if credential is None:
        return None
    try:
        principal = auth.verify_credential(credential)
    except AuthGateError as exc:
        auth.refused(exc, credential, path=request.path)
        raise
    _attach(request, principal, credential)
    return principal


class AuthGateMiddleware:
    """Authenticate each request that carries a credential; answer a bad one.

    Args:
        get_response: the next handler (Django passes it).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.authenticator = authenticator()
        _permissions()  # a wrong setting fails at start-up, not on a request
        _check_order(type(self))
        self._vary = credential_headers(self.authenticator)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        auth = self.authenticator
        credential = None
        try:
            credential = _credential(request, auth)
            if credential is not None:
                _attach(request, auth.verify_credential(credential), credential)
        except AuthGateError as exc:
            auth.refused(exc, credential, path=request.path)
            return _answer(exc, auth)
        response = self.get_response(request)
        patch_vary_headers(response, self._vary)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        auth = self.authenticator
        credential = None
        try:
            credential = _credential(request, auth)
            if credential is not None:
                _attach(request, await auth.verify_credential_async(credential), credential)
        except AuthGateError as exc:
            auth.refused(exc, credential, path=request.path)
            return _answer(exc, auth)
        pending: Awaitable[Any] = self.get_response(request)
        response = await pending
        patch_vary_headers(response, self._vary)
        return response


def credential_headers(auth: Authenticator) -> tuple[str, ...]:
    """The request headers a response depends on once authgate reads them: every response
    varies on them (``Vary``), so a cache keyed by Vary (Django's site-wide cache, a shared
    HTTP cache) never hands one client's page to another. Django's cache varies on
    ``Authorization`` by itself, only when the request has one; an API key, the token cookie
    and a provider's own header it does not know. With DPoP on, the ``DPoP`` header too: a
    page cached for a bound token is never served to a request without that proof (a cache
    in front of the check, as DRF's views have Django's, would serve it to the token's thief).

    Args:
        auth: the configured authenticator.
    """
    headers = ["Authorization", "x-api-key"]
    if auth.cookie is not None:
        headers.append("Cookie")
    if auth.token_header is not None:
        headers.append(auth.token_header)
    if auth.dpop is not None:
        headers.append("DPoP")
    return tuple(headers)
