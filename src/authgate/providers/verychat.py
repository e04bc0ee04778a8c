"""VeryChat: HS256 access tokens, ``POST /auth/validate-token``.

VeryChat's own document recommends verifying locally on each server; that needs the HS256
secret. Without it, every token goes to the validate endpoint with the Bearer header and
``{"projectId": …}``. Either way the token's ``projectId`` must be the configured one, and a
``sub`` with a leading ``@`` is normalised as VeryChat normalises handles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._exchange import Plan, Request, Response
from .._remote import Claims, RemotePolicy, upstream_error
from .._upstream import Upstream, allowed_http, check_url, upstream_of
from ..errors import BadAudience, ConfigurationError, InvalidToken
from ..extract import Credential
from ..jwt import JWTVerifier
from ..keys import KeySet
from ..principal import CredentialKind, Principal, RolePath, VerifiedBy, principal_from_claims
from .base import HybridProvider, credential_kind

__all__ = ["VeryChatProvider"]

VALIDATE_PATH = "/auth/validate-token"


class VeryChatProvider(HybridProvider):
    """VeryChat tokens, locally with the secret, else at the validate endpoint.

    Args:
        project_id: the project whose tokens are accepted.
        secret: the HS256 secret (at least 32 bytes) for local verification.
        base_url: VeryChat's API.
        name: the provider's name.
        leeway: seconds of clock skew for local verification (30 unless given; needs
            ``secret``).
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    algorithms = frozenset({"HS256"})

    def __init__(
        self,
        project_id: str,
        secret: str | bytes | None = None,
        *,
        base_url: str = "https://gapi.veryapi.io",
        name: str = "verychat",
        leeway: float | None = None,
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        if not isinstance(project_id, str) or not project_id:
            raise ConfigurationError("VeryChat needs the projectId whose tokens it accepts")
        self.project_id = project_id
        self.validate_url = check_url(
            base_url.rstrip("/") + VALIDATE_PATH, "VeryChat's base_url", allowed_http(upstream)
        )
        if secret is None and leeway is not None:
            raise ConfigurationError(
                "VeryChat's leeway is for local verification: give the secret too"
            )
        verifier = None
        if secret is not None:
            verifier = JWTVerifier(
                KeySet.from_secret(secret),
                algorithms=["HS256"],
                required_claims=("exp", "sub"),
                leeway=30.0 if leeway is None else leeway,
                clock=upstream_of(upstream).clock,
            )
        super().__init__(
            name,
            verifier=verifier,
            remote=secret is None,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )

    def __repr__(self) -> str:
        mode = "local" if self.verifier is not None else "remote"
        return f"VeryChatProvider({self.name!r}, project_id={self.project_id!r}, {mode})"

    def plan(self, token: str) -> Plan[Claims]:
        response = yield Request(
            "POST",
            self.validate_url,
            {"authorization": f"Bearer {token}"},
            json={"projectId": self.project_id},
        )
        return self._read(response)

    def _read(self, response: Response) -> Claims:
        if response.status in (200, 401):
            body = response.json()
            if not isinstance(body, dict):
                raise upstream_error(response, "VeryChat's validate endpoint (not an object)")
            data = body.get("data")
            if body.get("statusCode") == 200 and isinstance(data, dict):
                payload = data.get("payload")
                if data.get("valid") is True and isinstance(payload, dict):
                    return payload
                raise InvalidToken("VeryChat rejected the token")
            if body.get("statusCode") == 401 or response.status == 401:
                raise InvalidToken("VeryChat rejected the token")
        raise upstream_error(response, "VeryChat's validate endpoint")

    def _principal(
        self, claims: Mapping[str, Any], verified_by: VerifiedBy, kind: CredentialKind
    ) -> Principal:
        if claims.get("projectId") != self.project_id:
            raise BadAudience("the token belongs to another VeryChat project")
        subject = claims.get("sub")
        if isinstance(subject, str) and subject.startswith("@"):
            claims = {**claims, "sub": subject[1:]}  # VeryChat strips a handle's leading '@'
        return principal_from_claims(
            claims,
            provider=self.name,
            credential=kind,
            verified_by=verified_by,
            tenant_claims=("projectId",),
            role_claims=self.role_claims,
        )

    def local_principal(self, claims: dict[str, Any]) -> Principal:
        return self._principal(claims, "local", "jwt")

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        return self._principal(claims, "remote", credential_kind(credential))
