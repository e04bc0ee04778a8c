"""RFC 6750 answers: status, ``WWW-Authenticate``, and the providers' JSON body shape."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .dpop import DPoP

from .errors import (
    AuthGateError,
    InsufficientScope,
    InvalidDPoPProof,
    MissingCredential,
    ServiceUnavailable,
    UseDPoPNonce,
)

__all__ = ["PHRASES", "rejection"]

PHRASES: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_RFC6750_CODES: Final = frozenset({"invalid_request", "invalid_token", "insufficient_scope"})


def _quoted(text: str) -> str:
    # auth-param quoted-string: no quotes or backslashes, visible ASCII only.
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)


def rejection(
    exc: AuthGateError | None, realm: str, dpop: DPoP | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body answering ``exc`` (``None``: no credential at all).

    With DPoP on, every 401 also carries the ``DPoP`` challenge with its ``algs`` (RFC 9449
    §7.1), the one that names the error when the proof is at fault.

    Args:
        exc: the error, or ``None`` when the request carried no credential.
        realm: the challenge realm.
        dpop: the DPoP settings, when DPoP is on.
    """
    if exc is None:
        exc = MissingCredential()
    status, message = exc.status, exc.message
    challenge: str | None = None
    if isinstance(exc, InvalidDPoPProof):
        challenge = f'Bearer realm="{realm}"'
    elif isinstance(exc, MissingCredential):
        challenge = f'Bearer realm="{realm}"'  # RFC 6750 §3.1: no error code without a credential
    elif exc.error in _RFC6750_CODES:
        challenge = (
            f'Bearer realm="{realm}", error="{exc.error}", error_description="{_quoted(message)}"'
        )
        if isinstance(exc, InsufficientScope) and exc.scopes:
            challenge += f', scope="{_quoted(" ".join(exc.scopes))}"'
    body = json.dumps(
        {"statusCode": status, "error": PHRASES.get(status, "Error"), "message": message}
    ).encode()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if challenge is not None:
        headers.append(("www-authenticate", challenge))
    if dpop is not None and status == 401:
        second = f'DPoP realm="{realm}", algs="{" ".join(dpop.algorithms)}"'
        if isinstance(exc, InvalidDPoPProof):
            second += f', error="{exc.error}", error_description="{_quoted(message)}"'
        headers.append(("www-authenticate", second))
    if isinstance(exc, UseDPoPNonce):
        headers.append(("dpop-nonce", exc.nonce))
    if isinstance(exc, ServiceUnavailable):
        headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after)))))
    return status, headers, body
