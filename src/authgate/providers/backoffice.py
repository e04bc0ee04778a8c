"""Back Office: RS256 access tokens with ``iss``, revocable on sign-out.

Claims ``sub`` (e.g. ``"1"``), ``iat``, ``exp`` (10 hours later) and ``iss`` are all required.
Back Office documents neither a verify endpoint nor where its public key lives: the key
source is configuration. Sign-out revokes the access token at Back Office; a stateless verifier
learns of it through :meth:`authgate.Authenticator.revoke` (by token, ``jti``, or subject and
issue time), called by whatever handles the sign-out.

Its refresh tokens are RS256 JWTs too, and the document's examples give them the very claims
of an access token: nothing it documents tells the two apart, so a refresh token sent as a
Bearer token verifies. Where your deployment marks them (a claim, a shorter ``exp``), refuse
them with ``claims_hook`` (raise :class:`~authgate.InvalidToken`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..jwt import JWTVerifier
from ..keys import KeySet
from ..keysources import RemoteKeySource
from ..principal import RolePath
from .base import JWTProvider

__all__ = ["BackOfficeProvider"]


class BackOfficeProvider(JWTProvider):
    """Back Office tokens, verified locally.

    Args:
        issuer: the exact ``iss`` (e.g. ``https://ap.vendor.com``).
        keys: the key source or ``KeySet`` holding Back Office's RS256 public key.
        algorithms: the allowlist (RS256).
        leeway: seconds of clock skew.
        name: the provider's name.
        clock: returns the current time.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        claims_hook: checks verified claims before they are mapped (e.g. refuses your
            deployment's refresh tokens); raise an ``InvalidToken`` to refuse.
    """

    def __init__(
        self,
        issuer: str,
        keys: KeySet | RemoteKeySource,
        *,
        algorithms: Iterable[str] = ("RS256",),
        leeway: float = 30.0,
        name: str = "backoffice",
        clock: Callable[[], float] = time.time,
        role_claims: Iterable[RolePath] = (),
        claims_hook: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("Back Office tokens carry an iss: configure it")
        verifier = JWTVerifier(
            keys,
            algorithms=algorithms,
            issuer=issuer,
            leeway=leeway,
            required_claims=("sub", "iat", "exp", "iss"),
            clock=clock,
        )
        super().__init__(name, verifier, claims_hook=claims_hook, role_claims=role_claims)
        self.revocable = True  # Back Office documents sign-out as the way a token dies
