"""Verifiers: local JWT verification (and, later, remote verification)."""

from .jwt import JWTVerifier

__all__ = ["JWTVerifier"]
