"""authgate: stateless token verification for ASGI and WSGI apps.

The pipeline, stage by stage, and the module that holds each::

    request headers
      1 extract     extract.py       Credential: Authorization Bearer / x-api-key / cookie (400s)
      2 cache       _cache.py        verified-token cache (the hit path: _hitpath.py)
      3 route       routing.py       which provider: API-key prefix, unverified iss / alg, opaque
      4 verify      jwt.py           local JWT rules (keys.py, keysources.py for the keys)
                    providers/       each provider; remote calls through _remote.py, over
                                     _upstream.py (settings), _exchange.py, _clients.py
                    apikeys.py       API-key rings; revocation.py the denylist
      5 principal   principal.py     the one normalized Principal
      6 answer      asgi.py, wsgi.py thin shells over _shell.py; refusals in _responses.py

Where a token is rejected: errors.py draws the error tree; each class names its stage.
Where to add a provider: one module in providers/ (the SDK is :mod:`authgate.providers`).
:class:`Authenticator` (authenticator.py) runs stages 1-5 for both shells.
"""

from ._cache import CacheLimits
from ._remote import RemotePolicy
from ._upstream import Upstream
from .apikeys import APIKey, APIKeyRing, hash_api_key
from .authenticator import Authenticator
from .errors import (
    AlgorithmNotAllowed,
    AuthGateError,
    BadAudience,
    BadIssuer,
    BadSignature,
    ConfigurationError,
    CrossOrigin,
    ExpiredToken,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    KeyNotFound,
    KeySourceUnavailable,
    MalformedToken,
    MissingClaim,
    MissingCredential,
    NotYetValid,
    ProviderUnavailable,
    RevokedToken,
    ServiceUnavailable,
    TokenTooLarge,
    UnsupportedHeader,
    UnverifiedBinding,
)
from .extract import Credential, TokenCookie
from .jwt import JWTVerifier
from .keys import Key, KeySet
from .keysources import (
    CertificateKeySource,
    JWKSKeySource,
    KeyFetchPolicy,
    OIDCKeySource,
    RemoteKeySource,
)
from .principal import ANONYMOUS, Anonymous, Principal, Roles
from .providers import (
    APIKeyProvider,
    AuthonProvider,
    BackOfficeProvider,
    ClientAuth,
    Endpoint,
    EndpointProvider,
    IntrospectionProvider,
    JWTProvider,
    MoriProvider,
    MultiTenantProvider,
    Provider,
    TenantLimits,
    VeryChatProvider,
)

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
    "CacheLimits",
    "CertificateKeySource",
    "ClientAuth",
    "ConfigurationError",
    "Credential",
    "CrossOrigin",
    "Endpoint",
    "EndpointProvider",
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
    "KeySourceUnavailable",
    "MalformedToken",
    "MissingClaim",
    "MissingCredential",
    "MoriProvider",
    "MultiTenantProvider",
    "NotYetValid",
    "OIDCKeySource",
    "Principal",
    "Provider",
    "ProviderUnavailable",
    "RemoteKeySource",
    "RemotePolicy",
    "RevokedToken",
    "Roles",
    "ServiceUnavailable",
    "TenantLimits",
    "TokenCookie",
    "TokenTooLarge",
    "UnsupportedHeader",
    "UnverifiedBinding",
    "Upstream",
    "VeryChatProvider",
    "hash_api_key",
]
