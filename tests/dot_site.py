"""A real OAuth 2.0 server for the introspection tests: django-oauth-toolkit, as its docs set
it up (``/o/token/``, ``/o/revoke_token/``, ``/o/introspect/``), over an SQLite file named by
``AUTHGATE_DOT_DB``. ``python -m tests.dot_site`` creates the database, a user and the clients
(:data:`CLIENTS`); ``tests.dot_site:application`` serves it."""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

USER, PASSWORD = "alice", "correct horse battery staple"
CLIENTS = {  # name -> (client_id, client_secret, grant type)
    "web": ("web-client", "web-secret-0123456789abcdef", "password"),
    "service": ("billing-service", "service-secret-0123456789abcdef", "client-credentials"),
}

urlpatterns: list[Any] = []


def _configure() -> None:
    """Django's settings for this process (not at import: the suite's own Django settings
    live in the test workers that read :data:`CLIENTS`)."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="dot-test-site",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "oauth2_provider",
        ],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ["AUTHGATE_DOT_DB"],
            }
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # a test's speed
        USE_TZ=True,
        OAUTH2_PROVIDER={
            "SCOPES": {"read": "read", "write": "write", "introspection": "introspect tokens"},
            "ACCESS_TOKEN_EXPIRE_SECONDS": 600,
        },
    )
    django.setup()
    from django.urls import include, path

    urlpatterns.append(path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")))


def setup() -> None:
    """The database, the user and the clients (client secrets are hashed as DOT stores them)."""
    _configure()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    User.objects.create_user(USER, password=PASSWORD)
    for name, (client_id, secret, grant) in CLIENTS.items():
        Application.objects.create(
            name=name,
            client_id=client_id,
            client_secret=secret,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant,
        )


def application() -> Any:
    from django.core.wsgi import get_wsgi_application

    _configure()
    return get_wsgi_application()


if __name__ == "__main__":
    setup()
