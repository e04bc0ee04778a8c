"""The cache-hit path: from a request to a cached principal with no parsing at all.

One rule, for ASGI HTTP scopes and WSGI environs alike: the request carries exactly one
``Authorization`` value, no other credential header (``x-api-key``, a provider's own
``token_header``: beside a Bearer value, the full path refuses them), and that raw value is a
whole key of the verified-token cache (keys are the canonical ``Bearer <token>`` line, see
:func:`authgate._cache.cache_key`, so a hit *is* a Bearer value of RFC 6750 syntax) whose
deadline the cache's clock has not reached. Then the shell attaches the principal and calls the
app. Anything else, however ordinary, goes to the shell's full path with the request untouched,
and the full path decides, including every 400.

The cache is indexed by the key's last bytes (:data:`authgate._cache.TAIL`) and the entry holds
the whole key, so a hit hashes a few dozen bytes and compares the rest: its cost does not grow
with the token.

Each shell applies the rule at the top of its ``__call__``, over the cache's bound ``get`` and
its clock taken once at construction (as structlog specialises its hot path): a hit costs one
loop over the header pairs, one dict lookup, one comparison, one clock read and :func:`attach`.

A DPoP request never takes the hit path: its cache key is not a header value. The ASGI
shell has a lane for it instead (``AuthGateMiddleware._proved_hit``): when the header value
after ``DPoP `` is, byte for byte, a token the cache holds under the DPoP scheme and the
request carries one ``DPoP`` header, extraction is skipped and the proof is checked as the
full path checks it (:meth:`authgate.Authenticator.check_proof_async`); anything else, and
any configuration where more could come with the token (client certificates, a provider's
own header), goes to the full path.

What a hit writes is chosen by cost too: ``scope["user"]`` and ``scope["auth"]`` (Starlette's
names: the principal has one name, ``request.user``) and the realm, for answers the app gives
later (:mod:`authgate.fastapi`). The realm goes into the request's state (:data:`REALM_KEY`),
not the scope: the scope already holds the server's keys and the framework's, and one key
more than its table holds makes the interpreter grow the table on every request (measured:
about 1,100 instructions, a tenth of the hit path's cost, on a Starlette app in-process and
under uvicorn).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ._cache import TAIL
from .principal import Anonymous, Principal

if TYPE_CHECKING:
    from .dpop import DPoP

__all__ = [
    "ENVIRON_KEY",
    "REALM_KEY",
    "TAIL_SLICE",
    "UNSET",
    "Challenge",
    "attach",
    "challenge_of",
    "realm_of",
]

ENVIRON_KEY: Final = "authgate.principal"
"""Where the WSGI shell puts the principal."""
REALM_KEY: Final = "authgate.realm"
"""Where, in ``scope["state"]``, the ASGI shell puts the :class:`Challenge` of the
authenticator that let the request in (read by :mod:`authgate.fastapi` for its answers)."""


class Challenge(NamedTuple):
    """What a refusal's ``WWW-Authenticate`` needs from the authenticator: its realm, and its
    DPoP settings when DPoP is on (one object: one store per request on the hit path)."""

    realm: str
    dpop: DPoP | None = None


TAIL_SLICE: Final = slice(-TAIL, None)
"""A credential's index in the cache (one constant: no slice object built per request)."""
UNSET: Final[Any] = object()
"""No ``Authorization`` header seen yet (``None`` could be a header's value)."""


def attach(
    scope: MutableMapping[str, Any], principal: Principal | Anonymous, realm: Challenge
) -> None:
    """Set ``scope["user"]`` and ``scope["auth"]`` (the principal) and
    ``scope["state"]["authgate.realm"]`` (see :func:`challenge_of`).

    Args:
        scope: the ASGI scope.
        principal: who the request is from.
        realm: the authenticator's challenge.
    """
    scope["user"] = scope["auth"] = principal
    state = scope.get("state")
    if state is None:
        scope["state"] = {REALM_KEY: realm}
    else:
        state[REALM_KEY] = realm


def challenge_of(scope: MutableMapping[str, Any]) -> Challenge | None:
    """The challenge :func:`attach` recorded for this request, or ``None`` when no shell did.

    Args:
        scope: the ASGI scope.
    """
    state = scope.get("state")
    found = state.get(REALM_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, Challenge) else None


def realm_of(scope: MutableMapping[str, Any]) -> str | None:
    """The realm :func:`attach` recorded for this request, or ``None`` when no shell did.

    Args:
        scope: the ASGI scope.
    """
    challenge = challenge_of(scope)
    return None if challenge is None else challenge.realm
