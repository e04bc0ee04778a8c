"""The errors authgate raises, one tree.

Every class carries the HTTP status and the RFC 6750 error code it is answered with, and a
stable ``reason`` string, so the middleware renders any of them without an ``isinstance``
ladder. No message ever contains a token, a key or a credential header.

::

    AuthGateError                       (status 401, base of everything below)
    ├── ConfigurationError              unsafe or invalid configuration; raised at construction
    ├── InvalidRequest                  400 invalid_request: the request itself is malformed
    ├── MissingCredential               401, no error code: the request carries no credential
    ├── InvalidToken                    401 invalid_token: the client's credential is bad
    │   ├── MalformedToken              reason "malformed"
    │   ├── TokenTooLarge               reason "too_large"
    │   ├── UnsupportedHeader           reason "unsupported_header"
    │   ├── AlgorithmNotAllowed         reason "alg_not_allowed"
    │   ├── KeyNotFound                 reason "key_not_found"
    │   ├── BadSignature                reason "bad_signature"
    │   ├── ExpiredToken                reason "expired"
    │   ├── NotYetValid                 reason "not_yet_valid"
    │   ├── BadIssuer                   reason "bad_issuer"
    │   ├── BadAudience                 reason "bad_audience"
    │   ├── MissingClaim                reason "missing_claim"
    │   ├── UnverifiedBinding           reason "unverified_binding": bound to a key (cnf)
    │   ├── InvalidDPoPProof            401 invalid_dpop_proof: the DPoP proof does not hold
    │   │   └── UseDPoPNonce            401 use_dpop_nonce: send the nonce in DPoP-Nonce
    │   └── RevokedToken                reason "revoked": on the denylist (signed out)
    ├── Forbidden                       403: a valid credential without the right (banned user...)
    │   └── InsufficientScope           403 insufficient_scope: a required scope is missing
    └── ServiceUnavailable              503 + Retry-After: our outage, never the client's fault
        ├── KeySourceUnavailable              the signing keys cannot be fetched
        └── ProviderUnavailable         the provider's endpoint is down, rate-limited or tripped
"""

from __future__ import annotations

from typing import Any, TypeVar

E = TypeVar("E", bound="AuthGateError")

__all__ = [
    "AlgorithmNotAllowed",
    "AuthGateError",
    "BadAudience",
    "BadIssuer",
    "BadSignature",
    "ConfigurationError",
    "CrossOrigin",
    "ExpiredToken",
    "Forbidden",
    "InsufficientScope",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "KeyNotFound",
    "KeySourceUnavailable",
    "MalformedToken",
    "MissingClaim",
    "MissingCredential",
    "NotYetValid",
    "ProviderUnavailable",
    "RevokedToken",
    "ServiceUnavailable",
    "TokenTooLarge",
    "UnsupportedHeader",
    "UnverifiedBinding",
    "UseDPoPNonce",
]


class AuthGateError(Exception):
    """Base of every authgate error.

    Args:
        message: a stable, human-readable reason; never contains a credential.
    """

    status: int = 401
    error: str = "invalid_token"
    reason: str = "error"
    default_message: str = "authentication failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        self.detail = ""
        """What the operator needs beyond the client's message (never shown to clients)."""
        self.context: dict[str, Any] = {}
        """What was expected and what was found (``expected_iss``, ``skew``, ``provider``...),
        for the refusal's log record; never shown to clients, never a credential."""
        super().__init__(self.message)

    def with_context(self: E, **context: Any) -> E:
        """This error, with ``context`` added for its log record.

        Args:
            context: fields such as ``expected_iss`` or ``skew``.
        """
        self.context.update(context)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class ConfigurationError(AuthGateError, ValueError):
    """The configuration is unsafe or invalid; raised at construction, never per request."""

    status = 500
    error = "server_error"
    reason = "configuration"
    default_message = "invalid configuration"


class InvalidRequest(AuthGateError):
    """The request is malformed (two credentials, an empty Bearer value...): 400."""

    status = 400
    error = "invalid_request"
    reason = "invalid_request"
    default_message = "the request carries a malformed credential"


class MissingCredential(AuthGateError):
    """The request carries no credential at all (answered with a bare challenge, RFC 6750 §3.1)."""

    status = 401
    error = ""
    reason = "missing_credential"
    default_message = "authentication required: send 'Authorization: Bearer <token>' or 'x-api-key'"


class InvalidToken(AuthGateError):
    """The credential is invalid: 401 ``invalid_token``; ``reason`` says why, and ``claim``
    names the claim at fault when one is (as PyJWT's ``MissingRequiredClaimError.claim`` and
    panva/jose's ``claim`` do).

    Args:
        message: a stable, human-readable reason; never contains a credential.
        claim: the claim at fault, when it differs from the class's own.
    """

    reason = "invalid_token"
    default_message = "the token is invalid"
    claim: str | None = None

    def __init__(self, message: str | None = None, *, claim: str | None = None) -> None:
        super().__init__(message)
        if claim is not None:
            self.claim = claim


class MalformedToken(InvalidToken):
    """Not a well-formed compact JWS: segments, base64url, JSON or claim types."""

    reason = "malformed"
    default_message = "the token is malformed"


class TokenTooLarge(InvalidToken):
    """The token is longer than the configured maximum; rejected before parsing."""

    reason = "too_large"
    default_message = "the token is too large"


class UnsupportedHeader(InvalidToken):
    """The header asks for something not supported (``crit``, ``b64``, a wrong ``typ``)."""

    reason = "unsupported_header"
    default_message = "the token header is not supported"


class AlgorithmNotAllowed(InvalidToken):
    """The header's ``alg`` is not in the configured allowlist."""

    reason = "alg_not_allowed"
    default_message = "the token's algorithm is not allowed"


class KeyNotFound(InvalidToken):
    """No configured key suits the token's ``kid`` and ``alg``."""

    reason = "key_not_found"
    default_message = "no key matches the token"


class BadSignature(InvalidToken):
    """The signature does not verify with any candidate key."""

    reason = "bad_signature"
    default_message = "the token signature is invalid"


class ExpiredToken(InvalidToken):
    """``exp`` (plus leeway) has passed."""

    reason = "expired"
    default_message = "the token has expired"
    claim = "exp"


class NotYetValid(InvalidToken):
    """``nbf`` or ``iat`` lies in the future beyond the leeway."""

    reason = "not_yet_valid"
    default_message = "the token is not valid yet"
    claim = "nbf"  # "iat" when that is what lies in the future


class BadIssuer(InvalidToken):
    """``iss`` is missing or differs from the configured issuer."""

    reason = "bad_issuer"
    default_message = "the token issuer is not accepted"
    claim = "iss"


class BadAudience(InvalidToken):
    """``aud`` does not contain the configured audience, or is present when none is configured."""

    reason = "bad_audience"
    default_message = "the token audience is not accepted"
    claim = "aud"


class MissingClaim(InvalidToken):
    """A required claim is absent or null."""

    reason = "missing_claim"
    default_message = "the token lacks a required claim"


class UnverifiedBinding(InvalidToken):
    """The token is sender-constrained (its claims or introspection answer carry ``cnf``: a
    DPoP key thumbprint, RFC 9449, or a client certificate's, RFC 8705) and this request does
    not prove the binding; accepting it as a plain Bearer token would let whoever stole it
    replay it."""

    reason = "unverified_binding"
    default_message = "the token is bound to a client key and its binding cannot be verified"
    claim = "cnf"


class InvalidDPoPProof(InvalidToken):
    """The request's DPoP proof (RFC 9449) is missing, malformed, or does not prove the token's
    key, method, URI, freshness or uniqueness: 401 with ``error="invalid_dpop_proof"`` on the
    ``DPoP`` challenge. The proof is never logged."""

    error = "invalid_dpop_proof"
    reason = "invalid_dpop_proof"
    default_message = "the DPoP proof is invalid"
    claim = None


class UseDPoPNonce(InvalidDPoPProof):
    """The proof lacks a nonce this server issued (RFC 9449 §8): 401 ``use_dpop_nonce`` with a
    fresh one in ``DPoP-Nonce``.

    Args:
        nonce: the nonce the client must put in its next proof.
    """

    error = "use_dpop_nonce"
    reason = "use_dpop_nonce"
    default_message = "send a DPoP proof with the nonce in DPoP-Nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__()
        self.nonce = nonce


class RevokedToken(InvalidToken):
    """The token was revoked (signed out) and is on the denylist."""

    reason = "revoked"
    default_message = "the token has been revoked"


class Forbidden(AuthGateError):
    """The credential is valid but may not be used here: 403."""

    status = 403
    error = "forbidden"
    reason = "forbidden"
    default_message = "this credential is not allowed here"


class CrossOrigin(Forbidden):
    """A token from the opt-in cookie on a request another site's page may have sent
    (cross-site request forgery, see :class:`authgate.extract.TokenCookie`): 403."""

    reason = "cross_origin"
    default_message = "a token from a cookie is not accepted on a request from another site"


class InsufficientScope(Forbidden):
    """A required scope is missing: 403 ``insufficient_scope``.

    Args:
        message: what is missing.
        scopes: the scopes the resource requires (named in ``WWW-Authenticate``).
    """

    error = "insufficient_scope"
    reason = "insufficient_scope"
    default_message = "the credential lacks a required scope"

    def __init__(self, message: str | None = None, *, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.scopes = scopes


class ServiceUnavailable(AuthGateError):
    """Something we depend on is unavailable and nothing usable is cached: 503, our outage.

    Args:
        message: what failed, without any credential.
        retry_after: seconds the client may wait before retrying.
    """

    status = 503
    error = "temporarily_unavailable"
    reason = "unavailable"
    default_message = "authentication is temporarily unavailable"

    def __init__(self, message: str | None = None, *, retry_after: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeySourceUnavailable(ServiceUnavailable):
    """The key source cannot be reached and no usable keys are cached."""

    reason = "key_source_unavailable"
    default_message = "the signing keys cannot be fetched right now"


class ProviderUnavailable(ServiceUnavailable):
    """The provider's verification endpoint is down, rate-limiting us, or its breaker is open."""

    reason = "provider_unavailable"
    default_message = "the identity provider cannot be reached right now"
