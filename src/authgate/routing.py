"""Stage 3, route: which provider verifies a credential, from one unverified peek.

- A value that a provider's API-key ring claims (``x-api-key``, or a Bearer value with a
  known key prefix) goes to that provider.
- A JWT goes to the provider whose ``issuer`` equals the token's *unverified* ``iss``
  (exact match), else to the first whose ``issuer_template`` accepts it (one issuer per
  tenant), else to the first provider without an issuer that allows its ``alg``; an unknown
  issuer is refused here, before any network call.
- Any other Bearer value goes to the first provider that takes opaque tokens.
- A token from a provider's own header (``Provider.token_header``) goes to that provider.

The peek decides routing only, never trust: the chosen provider verifies everything again.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import AlgorithmNotAllowed, BadIssuer, InvalidToken, MalformedToken
from .extract import Credential, refuse_oversized
from .jwt import diagnose_compact, is_compact_jws, unverified_claims, unverified_header
from .providers.base import Provider

__all__ = ["Router"]


class Router:
    """Routes credentials to providers (see the module docstring for the rules).

    Args:
        providers: the configured providers, in routing order (already validated).
        max_credential_bytes: longer credentials are refused before any peek.
    """

    def __init__(self, providers: Sequence[Provider], max_credential_bytes: int) -> None:
        self.providers = tuple(providers)
        self.max_credential_bytes = max_credential_bytes
        # issuers are unique, except one shared by a local verifier and an endpoint (checked
        # by the Authenticator): its JWTs go to the local one, set last
        self._by_issuer: dict[str, Provider] = {}
        for p in sorted(self.providers, key=lambda p: getattr(p, "verifier", None) is not None):
            if p.issuer is not None:
                self._by_issuer[p.issuer] = p
        self._jwt_providers = tuple(p for p in self.providers if p.accepts_jwt)
        self._templated = tuple(p for p in self._jwt_providers if p.issuer_template is not None)
        self._key_providers = tuple(p for p in self.providers if p.accepts_api_keys)
        self._opaque = next((p for p in self.providers if p.accepts_opaque), None)
        self._only_jwt = self._jwt_providers[0] if len(self._jwt_providers) == 1 else None
        self._by_header = {p.token_header: p for p in self.providers if p.token_header}

    def route(self, credential: Credential) -> Provider:
        """The provider that verifies ``credential``; raise when none can.

        Args:
            credential: what :mod:`authgate.extract` found.
        """
        value = credential.value
        refuse_oversized(value, self.max_credential_bytes)
        if credential.header is not None:  # a provider's own header: that provider alone
            return self._by_header[credential.header]
        from_header = credential.kind == "api_key"
        if from_header and len(self._key_providers) > 1:
            # several rings: an x-api-key value goes to the one whose prefix it carries
            # (distinct and non-overlapping, checked at construction)
            for provider in self._key_providers:
                if value.startswith(provider.api_key_prefixes):
                    return provider
            raise InvalidToken("the API key is not recognised")
        for provider in self._key_providers:
            if provider.accepts_api_key(value, from_header=from_header):
                return provider
        if from_header:
            raise InvalidToken("the API key is not recognised")
        if not credential.is_jwt:
            if self._opaque is not None:
                return self._opaque
            raise MalformedToken("the Bearer token is not a JWT and no provider takes opaque ones")
        if self._only_jwt is not None:
            return self._only_jwt  # its verifier refuses a foreign iss before any fetch
        if not is_compact_jws(value):
            raise diagnose_compact(value)
        alg, issuer = self._peek(value)
        if issuer is not None:
            by_issuer = self._by_issuer.get(issuer)
            if by_issuer is not None:
                return by_issuer
            for provider in self._templated:
                if provider.accepts_issuer(issuer):
                    return provider
        for provider in self._jwt_providers:
            if (
                provider.issuer is None
                and provider.issuer_template is None
                and alg in provider.algorithms
            ):
                return provider
        if issuer is not None:
            raise BadIssuer("the token's issuer is not configured")
        raise AlgorithmNotAllowed("no configured provider accepts the token's algorithm")

    @staticmethod
    def _peek(token: str) -> tuple[str | None, str | None]:
        """The unverified ``alg`` and ``iss``: for routing only, never for trust."""
        alg = unverified_header(token.split(".", 1)[0]).get("alg")
        claims = unverified_claims(token)
        if claims is None:
            raise MalformedToken("the token payload is not base64url JSON")
        issuer = claims.get("iss")
        return (alg if isinstance(alg, str) else None), (
            issuer if isinstance(issuer, str) else None
        )
