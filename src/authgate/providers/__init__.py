"""The provider SDK: everything a new provider needs, and the built-in providers.

A provider is one class in one module. Subclass :class:`Provider` (the contract is in its
docstring), or one of the shapes the built-in providers take:

- :class:`JWTProvider`: JWTs verified locally by a :class:`~authgate.JWTVerifier`;
- :class:`HybridProvider`: local JWTs where keys are configured, an endpoint where they are
  not, and optionally an :class:`~authgate.APIKeyRing` (Authon, VeryChat, Mori);
- :class:`RemoteProvider`: every token verified at an endpoint; describe the exchange in
  ``plan`` as a generator that yields :class:`Request` values and receives
  :class:`Response` values, then returns the claims. Raise ``InvalidToken`` when the
  endpoint rejects the token and :class:`UpstreamError` when it fails (an outage: our 503,
  never the client's 401).

Helpers: :func:`principal_from_claims` maps claims to a :class:`~authgate.Principal`,
:func:`check_url` validates an endpoint URL (``https``, or ``http`` on loopback),
:class:`Upstream` carries how to reach the provider. Then export the new class from this
module and from :mod:`authgate`; nothing private is needed.
"""

from .._exchange import Plan, Request, Response, UpstreamError
from .._remote import Claims, RemotePolicy, upstream_error
from .._upstream import Upstream, check_url
from ..extract import Credential
from ..principal import Principal, principal_from_claims
from .alb import aws_alb
from .apikey import APIKeyProvider
from .authon import AuthonProvider
from .backoffice import BackOfficeProvider
from .base import HybridProvider, JWTProvider, Provider, RemoteProvider
from .endpoint import ClientAuth, Endpoint, EndpointProvider, IntrospectionProvider
from .mori import MoriProvider
from .presets import (
    auth0,
    clerk,
    cognito,
    entra,
    firebase,
    github_actions,
    google,
    keycloak,
    kubernetes,
    okta,
    supabase,
)
from .tenants import MultiTenantProvider, TenantLimits
from .verychat import VeryChatProvider

__all__ = [
    "APIKeyProvider",
    "AuthonProvider",
    "BackOfficeProvider",
    "Claims",
    "ClientAuth",
    "Credential",
    "Endpoint",
    "EndpointProvider",
    "HybridProvider",
    "IntrospectionProvider",
    "JWTProvider",
    "MoriProvider",
    "MultiTenantProvider",
    "Plan",
    "Principal",
    "Provider",
    "RemotePolicy",
    "RemoteProvider",
    "Request",
    "Response",
    "TenantLimits",
    "Upstream",
    "UpstreamError",
    "VeryChatProvider",
    "auth0",
    "aws_alb",
    "check_url",
    "clerk",
    "cognito",
    "entra",
    "firebase",
    "github_actions",
    "google",
    "keycloak",
    "kubernetes",
    "okta",
    "principal_from_claims",
    "supabase",
    "upstream_error",
]
