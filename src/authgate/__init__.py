"""authgate: stateless token verification for ASGI and WSGI apps."""

from ._remote import RemotePolicy
from .apikeys import APIKey, APIKeyProvider, APIKeyRing, hash_api_key
from .authenticator import Authenticator
from .errors import (
    AlgorithmNotAllowed,
    AuthGateError,
    BadAudience,
    BadIssuer,
    BadSignature,
    ConfigurationError,
    ExpiredToken,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    KeyNotFound,
    KeySourceError,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    ProviderUnavailable,
    RevokedToken,
    ServiceUnavailable,
    TokenTooLarge,
    UnsupportedHeader,
)
from .extract import Credential
from .keys import Key, KeySet
from .keysources import JWKSKeySource, KeyFetchPolicy, OIDCKeySource, RemoteKeySource
from .principal import ANONYMOUS, Anonymous, Principal
from .providers import JWTProvider, Provider
from .providers.authon import AuthonProvider
from .providers.backoffice import BackOfficeProvider
from .providers.mori import MoriProvider
from .providers.remote import IntrospectionProvider, RemoteVerifier
from .providers.verychat import VeryChatProvider
from .verifiers.jwt import JWTVerifier

__version__ = "0.1.0"

__all__ = [
    "ANONYMOUS",
    "APIKey",
    "APIKeyProvider",
    "APIKeyRing",
    "AlgorithmNotAllowed",
    "Anonymous",
    "AuthGateError",
    "Authenticator",
    "AuthonProvider",
    "BackOfficeProvider",
    "BadAudience",
    "BadIssuer",
    "BadSignature",
    "ConfigurationError",
    "Credential",
    "ExpiredToken",
    "Forbidden",
    "InsufficientScope",
    "IntrospectionProvider",
    "InvalidRequest",
    "InvalidToken",
    "JWKSKeySource",
    "JWTProvider",
    "JWTVerifier",
    "Key",
    "KeyFetchPolicy",
    "KeyNotFound",
    "KeySet",
    "KeySourceError",
    "MalformedToken",
    "MissingClaim",
    "MoriProvider",
    "NotYetValid",
    "OIDCKeySource",
    "Principal",
    "Provider",
    "ProviderUnavailable",
    "RemoteKeySource",
    "RemotePolicy",
    "RemoteVerifier",
    "RevokedToken",
    "ServiceUnavailable",
    "TokenTooLarge",
    "UnsupportedHeader",
    "VeryChatProvider",
    "hash_api_key",
]
