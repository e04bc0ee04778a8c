"""A project's own subclass of Django's AuthenticationMiddleware (imported once the auth app
is installed)."""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware


class OwnAuthentication(AuthenticationMiddleware):  # type: ignore[misc]
    """Django's, as a project may extend it."""
