"""Providers: configuration plus a mapping to :class:`~authgate.Principal`, one module each."""

from .base import JWTProvider, Provider

__all__ = ["JWTProvider", "Provider"]
