"""Roles: Principal.roles from a provider's role_claims, presets for common IdPs, and
authgate.fastapi.require_roles over a real FastAPI app under uvicorn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authgate import (
    Authenticator,
    ClientAuth,
    ConfigurationError,
    IntrospectionProvider,
    JWTProvider,
    JWTVerifier,
    Roles,
)
from authgate.asgi import AuthGateMiddleware
from authgate.principal import roles_from_claims
from authgate.testing import FakeIntrospection, TokenFactory, serve_asgi

from .apps import fastapi_app

ISSUER = "https://keycloak.test/realms/acme"

KEYCLOAK: dict[str, Any] = {
    "realm_access": {"roles": ["admin", "offline_access"]},
    "resource_access": {
        "orders.api": {"roles": ["orders-admin"]},
        "billing": {"roles": ["billing-viewer"]},
    },
}


@pytest.mark.parametrize(
    ("claims", "paths", "roles"),
    [
        pytest.param(KEYCLOAK, Roles.keycloak(), {"admin", "offline_access"}, id="keycloak-realm"),
        pytest.param(
            KEYCLOAK,
            Roles.keycloak("orders.api"),  # a client id with a dot: tuple paths
            {"admin", "offline_access", "orders-admin"},
            id="keycloak-client",
        ),
        pytest.param(
            {"roles": ["Task.Write", "Task.Read"]},
            Roles.ENTRA_ID,
            {"Task.Write", "Task.Read"},
            id="entra",
        ),
        pytest.param({"permissions": ["read:orders"]}, Roles.AUTH0, {"read:orders"}, id="auth0"),
        pytest.param({"cognito:groups": ["ops"]}, Roles.COGNITO, {"ops"}, id="cognito"),
        pytest.param(
            {"https://acme.example/roles": ["editor"]},
            ("https://acme.example/roles",),  # a claim named with dots: the name first
            {"editor"},
            id="namespaced-claim",
        ),
        pytest.param({"app": {"role": "owner"}}, ("app.role",), {"owner"}, id="dotted-string"),
        pytest.param(
            {"roles": "admin", "realm_access": ["not", "a", "map"], "x": [1, None, "", "ok"]},
            ("realm_access.roles", "x", "missing.path"),
            {"ok"},
            id="wrong-types-ignored",
        ),
    ],
)
def test_roles_from_claim_paths(
    claims: dict[str, Any], paths: tuple[Any, ...], roles: set[str]
) -> None:
    assert roles_from_claims(claims, paths) == roles


@pytest.mark.parametrize("bad", ["realm_access.roles", [()], [""], [("a", "")], [3]], ids=repr)
def test_unusable_role_claims_fail_at_construction(bad: Any) -> None:
    factory = TokenFactory("HS256", issuer=ISSUER)
    verifier = JWTVerifier(factory.keyset(), algorithms=["HS256"], issuer=ISSUER)
    with pytest.raises(ConfigurationError, match="role_claims"):
        JWTProvider("kc", verifier, role_claims=bad)


def test_no_role_claims_means_no_roles() -> None:
    factory = TokenFactory("HS256", issuer=ISSUER)
    verifier = JWTVerifier(factory.keyset(), algorithms=["HS256"], issuer=ISSUER)
    auth = Authenticator([JWTProvider("kc", verifier)])
    principal = auth.authenticate({"authorization": f"Bearer {factory.mint(**KEYCLOAK)}"})
    assert principal is not None
    assert principal.roles == frozenset()


def test_require_roles_over_uvicorn() -> None:
    """A Keycloak-shaped token: 200 with the realm role (roles in the body), 403 with the
    middleware's body and no challenge without it; a cache hit keeps the roles."""
    factory = TokenFactory("RS256", issuer=ISSUER)
    verifier = JWTVerifier(factory.keyset(), algorithms=["RS256"], issuer=ISSUER)
    provider = JWTProvider("keycloak", verifier, role_claims=Roles.keycloak("orders.api"))
    app = AuthGateMiddleware(fastapi_app(), Authenticator([provider]))
    admin = factory.mint("ada", **KEYCLOAK)
    viewer = factory.mint("bob", realm_access={"roles": ["viewer"]})
    with serve_asgi(app) as base, httpx.Client(base_url=base) as web:
        for _ in range(2):  # the second answer comes from the cache
            ok = web.get("/admin", headers={"authorization": f"Bearer {admin}"})
            assert ok.status_code == 200
            assert ok.json() == {"roles": ["admin", "offline_access", "orders-admin"]}
        refused = web.get("/admin", headers={"authorization": f"Bearer {viewer}"})
        assert refused.status_code == 403
        assert refused.json()["detail"] == {
            "statusCode": 403,
            "error": "Forbidden",
            "message": "missing role: admin",
        }


def test_roles_from_an_introspection_answer() -> None:
    """Remote providers take role_claims too: here from the introspection answer."""
    with FakeIntrospection() as idp:
        provider = IntrospectionProvider(
            "idp",
            idp.introspection_url,
            auth=ClientAuth.basic(idp.client_id, idp.client_secret),
            role_claims=Roles.keycloak(),
        )
        token = idp.issue("carol", realm_access={"roles": ["auditor"]})
        principal = Authenticator([provider]).authenticate({"authorization": f"Bearer {token}"})
        assert principal is not None
        assert principal.roles == {"auditor"}
