"""A Django project with DRF, served by real servers in tests/test_django.py (gunicorn sync and
gthread, uvicorn): plain views, ``@login_required``, ``@permission_required``, the mixins, a
DRF viewset, the admin and Django's session users beside token users.

Configured from the environment: ``AUTHGATE_TEST_SECRET`` (the HS256 key), ``AUTHGATE_TEST_DB``
(a SQLite file), ``AUTHGATE_TEST_DRF_ONLY`` (without authgate's Django middleware),
``AUTHGATE_TEST_DOWN_JWKS`` (an unreachable key set: an outage), ``AUTHGATE_TEST_NONCE_SECRET``. ``python -m tests.django_site prepare`` migrates and creates the session user.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import django
from django.conf import settings

ISSUER = "https://django.test"
DOWN_ISSUER = "https://down.test"  # its keys' URL: AUTHGATE_TEST_DOWN_JWKS, where nothing listens
API_KEY = "dj_live_0123456789abcdefghijklmnop"
DRF_ONLY = bool(os.environ.get("AUTHGATE_TEST_DRF_ONLY"))

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-not-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "rest_framework",
            "drf_spectacular",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "authgate.django.AuthGateMiddleware",
        ]
        if not DRF_ONLY
        else [  # DRF's authentication class alone, as authgate.drf's settings show, behind
            # Django's site-wide cache (which answers before any DRF view authenticates)
            "django.middleware.cache.UpdateCacheMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.cache.FetchFromCacheMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("AUTHGATE_TEST_DB", ":memory:"),
            }
        },
        AUTHGATE={
            "AUTHENTICATOR": "tests.django_site.authenticator",
            "PERMISSIONS": {"orders:read": ["orders.view_order"]},
        },
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["authgate.drf.AuthGateAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        },
        # one cache for every worker process, as a deployment shares Redis or memcached (DRF's
        # throttles count in it)
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": os.environ["AUTHGATE_TEST_CACHE"],
            }
            if "AUTHGATE_TEST_CACHE" in os.environ
            else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model, login  # noqa: E402
from django.contrib.auth.decorators import login_required, permission_required  # noqa: E402
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views import View  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from drf_spectacular.views import SpectacularAPIView  # noqa: E402
from rest_framework import routers, viewsets  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.throttling import UserRateThrottle  # noqa: E402

from authgate import (  # noqa: E402
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeySet,
    TokenCookie,
)
from authgate.dpop import DPoP  # noqa: E402
from authgate.drf import roles, scopes  # noqa: E402

_ring = APIKeyRing(prefixes=("dj_",))
_ring.add(API_KEY, subject="billing-service", scopes=["orders:read"])
authenticator = Authenticator(
    [
        JWTProvider(
            "idp",
            JWTVerifier(
                KeySet.from_secret(os.environ.get("AUTHGATE_TEST_SECRET", "x" * 32).encode()),
                algorithms=["HS256"],
                issuer=ISSUER,
            ),
            role_claims=["roles"],
        ),
        APIKeyProvider("keys", _ring),
        JWTProvider(
            "down",
            JWTVerifier(
                JWKSKeySource(os.environ.get("AUTHGATE_TEST_DOWN_JWKS", "http://127.0.0.1:9/")),
                algorithms=["ES256"],
                issuer=DOWN_ISSUER,
            ),
        ),
    ],
    cookie=TokenCookie("access_token"),
    dpop=DPoP(nonce_secret=os.environ.get("AUTHGATE_TEST_NONCE_SECRET", "n" * 32).encode()),
)


def whoami(request: HttpRequest) -> JsonResponse:
    user = request.user
    authenticated = user.is_authenticated  # evaluates Django's lazy user
    return JsonResponse(
        {
            "user": user.get_username(),
            "authenticated": authenticated,
            "kind": type(getattr(user, "_wrapped", user)).__name__,
            "via": "token" if getattr(request, "auth", None) is not None else "django",
        }
    )


@login_required
def private(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.get_username()})


@permission_required("orders.view_order", raise_exception=True)
def orders_page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"orders": [], "user": request.user.get_username()})


class Reports(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = "orders.view_order"
    raise_exception = True

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"reports": [], "user": request.user.get_username()})


def submit(request: HttpRequest) -> JsonResponse:
    """A POST view with Django's CSRF protection on (no csrf_exempt)."""
    return JsonResponse(
        {"submitted": request.method == "POST", "user": request.user.get_username()}
    )


def groups(request: HttpRequest) -> JsonResponse:
    """What code written for Django's users reads of any user."""
    user = request.user
    return JsonResponse(
        {
            "groups": [group.name for group in user.groups.all()],
            "in_admins": user.groups.filter(name="admins").exists(),
            "user_permissions": user.user_permissions.count(),
        }
    )


def csrf(request: HttpRequest) -> JsonResponse:
    """Django's CSRF token (and its cookie), as a page with a form would hand it out."""
    return JsonResponse({"token": get_token(request)})


def session_login(request: HttpRequest) -> JsonResponse:
    """Log the prepared Django user in by session (stands in for a login form)."""
    user = get_user_model().objects.get(username="admin")
    login(request, user)
    return JsonResponse({"logged_in": user.get_username()})


@csrf_exempt  # a test hook: the token to revoke comes in the body
def signout(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"revoked": authenticator.revoke(request.body.decode()) is not None})


class OrderViewSet(viewsets.ViewSet):
    permission_classes = (IsAuthenticated, scopes("orders:read"))

    def list(self, request: Request) -> Response:
        return Response({"orders": [], "user": request.user.get_username()})

    def create(self, request: Request) -> Response:
        return Response({"ordered": True, "user": request.user.get_username()}, status=201)


class AdminOnlyViewSet(viewsets.ViewSet):
    permission_classes = (IsAuthenticated, roles("admin"))

    def list(self, request: Request) -> Response:
        return Response({"ok": True})


class ThreePerHour(UserRateThrottle):
    rate = "3/hour"


class ThrottledViewSet(viewsets.ViewSet):
    """DRF's per-user throttle, keyed on ``request.user.pk``."""

    throttle_classes = (ThreePerHour,)

    def list(self, request: Request) -> Response:
        return Response({"user": request.user.get_username()})


router = routers.DefaultRouter()
router.register("orders", OrderViewSet, basename="orders")
router.register("admin-only", AdminOnlyViewSet, basename="admin-only")
router.register("throttled", ThrottledViewSet, basename="throttled")

urlpatterns = [
    path("whoami", whoami),
    path("private", private),
    path("orders", orders_page),
    path("reports", Reports.as_view()),
    path("submit", submit),
    path("session-login", session_login),
    path("csrf", csrf),
    path("groups", groups),
    path("signout", signout),
    path("api/", include(router.urls)),
    path("api/schema", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path("admin/", admin.site.urls),
]


def wsgi() -> Any:
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def asgi() -> Any:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def prepare() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    if not users.filter(username="admin").exists():
        users.create_superuser("admin", "admin@example.com", "not-a-real-password")


if __name__ == "__main__" and sys.argv[1:] == ["prepare"]:
    prepare()
