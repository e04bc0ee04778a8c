"""authgate: stateless token verification for ASGI and WSGI apps."""

from .errors import (
    AlgorithmNotAllowed,
    AuthGateError,
    BadAudience,
    BadIssuer,
    BadSignature,
    ConfigurationError,
    ExpiredToken,
    InvalidRequest,
    InvalidToken,
    KeyNotFound,
    KeySourceError,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    TokenTooLarge,
    UnsupportedHeader,
)
from .keys import Key, KeySet
from .keysources import JWKSKeySource, KeyFetchPolicy, OIDCKeySource, RemoteKeySource
from .verifiers.jwt import JWTVerifier

__version__ = "0.1.0"

__all__ = [
    "AlgorithmNotAllowed",
    "AuthGateError",
    "BadAudience",
    "BadIssuer",
    "BadSignature",
    "ConfigurationError",
    "ExpiredToken",
    "InvalidRequest",
    "InvalidToken",
    "JWKSKeySource",
    "JWTVerifier",
    "Key",
    "KeyFetchPolicy",
    "KeyNotFound",
    "KeySet",
    "KeySourceError",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "OIDCKeySource",
    "RemoteKeySource",
    "TokenTooLarge",
    "UnsupportedHeader",
]
