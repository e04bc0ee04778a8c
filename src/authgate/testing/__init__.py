"""Tools for testing apps protected by authgate: mint tokens, run local identity providers.

- :class:`TokenFactory` / :class:`SigningKey`: signed JWTs for any supported algorithm, and
  arbitrary headers and payloads for negative tests.
- :class:`LocalIssuer`: a JWKS + OIDC discovery server on 127.0.0.1 that can rotate keys,
  go down or misbehave, and counts its requests.
- :class:`FakeAuthon`, :class:`FakeVeryChat`, :class:`FakeIntrospection`: the providers'
  verification endpoints, speaking exactly their documented shapes.
- :class:`FakeTenants`: a multi-tenant issuer (one issuer, key and JWKS per tenant).
- :func:`serve_asgi`: uvicorn on a free loopback port.
- :func:`serve_wsgi`: the standard library's WSGI server on a free loopback port.
- :class:`authgate.testing.pki.PrivateCA`: a CA and certificates for TLS tests.
- :mod:`authgate.testing.redis_servers`: Redis or Valkey, Sentinel and Cluster servers.

For tests and demos only: keys are generated in memory and never persisted.
"""

from .._extras import extra_missing

try:
    import jwt  # noqa: F401 (PyJWT mints the kit's tokens: checked first, to name the extra)
except ModuleNotFoundError as exc:  # the extra is missing: say which
    raise extra_missing("authgate.testing", "testing", exc) from exc

from .fakes import (
    FakeALB,
    FakeAuth0,
    FakeAuthon,
    FakeCognito,
    FakeFirebase,
    FakeGoogle,
    FakeIntrospection,
    FakeOIDC,
    FakeVeryChat,
)
from .servers import (
    Answer,
    FakeServer,
    FakeTenants,
    Fault,
    LocalIssuer,
    free_port,
    json_answer,
    serve_asgi,
    serve_wsgi,
    wait_for_port,
)
from .tokens import DPoPClient, SigningKey, TokenFactory, b64url

__all__ = [
    "Answer",
    "DPoPClient",
    "FakeALB",
    "FakeAuth0",
    "FakeAuthon",
    "FakeCognito",
    "FakeFirebase",
    "FakeGoogle",
    "FakeIntrospection",
    "FakeOIDC",
    "FakeServer",
    "FakeTenants",
    "FakeVeryChat",
    "Fault",
    "LocalIssuer",
    "SigningKey",
    "TokenFactory",
    "b64url",
    "free_port",
    "json_answer",
    "serve_asgi",
    "serve_wsgi",
    "wait_for_port",
]
