"""What the ASGI and WSGI shells share: their configuration, validated once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from .authenticator import Authenticator
from .errors import ConfigurationError

__all__ = ["Shell"]

AppT = TypeVar("AppT")


class Shell(Generic[AppT]):
    """The configuration of a middleware shell over an :class:`Authenticator`.

    Args:
        app: the app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: exact paths that skip authentication (e.g. ``/health``).
    """

    def __init__(
        self,
        app: AppT,
        authenticator: Authenticator,
        *,
        required: bool = True,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        if not isinstance(authenticator, Authenticator):
            raise ConfigurationError("the middleware needs an authgate.Authenticator")
        if isinstance(exclude_paths, str):
            raise ConfigurationError("exclude_paths must be a list of paths, not one string")
        self.app = app
        self.authenticator = authenticator
        self.required = required
        self.exclude_paths = frozenset(exclude_paths)
        self._cookie = authenticator.cookie_name
        self._prepare()

    def _prepare(self) -> None:
        """Build, once, what a shell's hot path reads on every request (a subclass hook)."""
