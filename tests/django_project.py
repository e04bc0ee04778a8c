"""A minimal Django project: one view reading the principal authgate put in the environ."""

from __future__ import annotations

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path


def whoami(request: HttpRequest) -> JsonResponse:
    principal = request.META["authgate.principal"]
    return JsonResponse({"subject": principal.subject, "provider": principal.provider})


urlpatterns = [path("whoami", whoami)]


def application() -> WSGIHandler:
    """The project's WSGI application (settings configured once per process)."""
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only-not-secret",
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
