"""Multi-tenant issuers: one MultiTenantProvider for every allowed tenant of an issuer
template, against FakeTenants (one issuer, key and JWKS per tenant) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authgate import (
    Authenticator,
    AuthGateError,
    BadIssuer,
    ConfigurationError,
    InvalidToken,
    JWTProvider,
    JWTVerifier,
    MultiTenantProvider,
    Roles,
    TenantLimits,
    Upstream,
)
from authgate.asgi import AuthGateMiddleware
from authgate.testing import FakeTenants, LocalIssuer, serve_asgi

from .apps import starlette_app
from .conftest import Clock


@pytest.fixture
def idp() -> Iterator[FakeTenants]:
    with FakeTenants(["contoso", "fabrikam", "outsider"]) as server:
        yield server


def provider(idp: FakeTenants, **options: Any) -> MultiTenantProvider:
    options.setdefault("tenants", ["contoso", "fabrikam"])
    return MultiTenantProvider("entra", idp.issuer_template, **options)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_each_allowed_tenant_is_verified_with_its_own_keys(idp: FakeTenants) -> None:
    multi = provider(idp)
    auth = Authenticator([multi])
    for tenant in ("contoso", "fabrikam", "contoso"):
        principal = auth.authenticate(bearer(idp.mint(tenant, f"user@{tenant}")))
        assert principal is not None
        assert (principal.subject, principal.tenant, principal.issuer) == (
            f"user@{tenant}",
            tenant,
            idp.issuer(tenant),
        )
    assert multi.issuers_built == 2
    assert idp.requests_for("contoso") == 2  # discovery and JWKS, once
    assert idp.requests_for("fabrikam") == 2


def test_a_tenant_outside_the_allowlist_costs_no_network_call(idp: FakeTenants) -> None:
    auth = Authenticator([provider(idp)])
    with pytest.raises(BadIssuer):
        auth.authenticate(bearer(idp.mint("outsider")))
    assert idp.requests_for("outsider") == 0
    assert idp.accepted == 0


def test_a_token_claiming_another_tenants_issuer_is_refused(idp: FakeTenants) -> None:
    """Signed by contoso's key but naming fabrikam as issuer: fabrikam's keys decide."""
    auth = Authenticator([provider(idp)])
    forged = idp.factories["contoso"].mint("mallory", iss=idp.issuer("fabrikam"))
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(forged))
    assert caught.value.reason == "key_not_found"


def test_a_callable_decides_which_tenants(idp: FakeTenants) -> None:
    asked: list[str] = []

    def allowed(tenant: str) -> bool:
        asked.append(tenant)
        return tenant != "outsider"

    auth = Authenticator([provider(idp, tenants=allowed)])
    assert auth.authenticate(bearer(idp.mint("fabrikam"))) is not None
    with pytest.raises(BadIssuer):
        auth.authenticate(bearer(idp.mint("outsider")))
    assert asked == ["fabrikam", "outsider"]


def test_issuers_are_bounded_and_dropped_when_idle(idp: FakeTenants) -> None:
    clock = Clock()
    multi = provider(
        idp,
        tenants=["contoso", "fabrikam", "outsider"],
        limits=TenantLimits(max_issuers=2, idle_timeout=600),
        upstream=Upstream(clock=clock),  # tokens live an hour: still valid 601 s on
    )
    auth = Authenticator([multi], cache=None)
    for tenant in ("contoso", "fabrikam", "outsider"):
        assert auth.authenticate(bearer(idp.mint(tenant))) is not None
    assert list(multi.issuers) == [idp.issuer("fabrikam"), idp.issuer("outsider")]  # LRU out
    assert auth.authenticate(bearer(idp.mint("contoso"))) is not None  # fetched again
    assert idp.requests_for("contoso") == 4
    assert multi.issuers_built == 4
    clock.now += 601
    assert auth.authenticate(bearer(idp.mint("fabrikam"))) is not None
    assert list(multi.issuers) == [idp.issuer("fabrikam")]  # the idle ones went


def test_exact_issuers_and_templates_route_side_by_side(idp: FakeTenants) -> None:
    """An exact issuer wins; a template takes its tenants; a foreign issuer is bad_issuer."""
    with LocalIssuer("ES256") as single:
        exact = JWTProvider(
            "single",
            JWTVerifier(single.factory.keyset(), algorithms=["ES256"], issuer=single.url),
        )
        auth = Authenticator([exact, provider(idp)])
        local = auth.authenticate(bearer(single.mint("solo")))
        tenant = auth.authenticate(bearer(idp.mint("contoso", "multi")))
        assert local is not None
        assert local.provider == "single"
        assert tenant is not None
        assert tenant.provider == "entra"
        with pytest.raises(BadIssuer):
            auth.authenticate(bearer(idp.factories["contoso"].mint(iss="https://evil.test/x")))


def test_roles_and_the_tenant_claim(idp: FakeTenants) -> None:
    """A tid claim wins over the issuer's tenant; role_claims apply per token."""
    auth = Authenticator([provider(idp, role_claims=Roles.ENTRA_ID)])
    principal = auth.authenticate(bearer(idp.mint("contoso", tid="contoso-id", roles=["Admin"])))
    assert principal is not None
    assert principal.tenant == "contoso-id"
    assert principal.roles == {"Admin"}


def test_over_uvicorn(idp: FakeTenants) -> None:
    auth = Authenticator([provider(idp)])
    with (
        serve_asgi(AuthGateMiddleware(starlette_app(), auth)) as base,
        httpx.Client(base_url=base) as web,
    ):
        ok = web.get("/whoami", headers=bearer(idp.mint("fabrikam", "ada")))
        assert ok.status_code == 200
        assert ok.json()["subject"] == "ada"
        refused = web.get("/whoami", headers=bearer(idp.mint("outsider")))
        assert refused.status_code == 401
        assert refused.json()["message"] == "the token's issuer is not accepted"
    auth.close()


@pytest.mark.parametrize(
    ("template", "tenants", "message"),
    [
        ("https://login.example.com/v2.0", ["a"], "exactly one '{tenant}'"),
        ("https://login.example.com/{tenant}/{tenant}", ["a"], "exactly one '{tenant}'"),
        ("https://login.example.com/{tenant}/{realm}", ["a"], "other than '{tenant}'"),
        ("http://login.example.com/{tenant}", ["a"], "must use https"),
        ("https://login.example.com/{tenant}", "a", "a list of tenant ids"),
        ("https://login.example.com/{tenant}", [], "at least one"),
    ],
)
def test_mistakes_fail_at_construction(template: str, tenants: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MultiTenantProvider("entra", template, tenants=tenants)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limits": {"max_issuers": 5}}, "limits must be an authgate.providers.TenantLimits"),
        ({"algorithms": "RS256"}, "not one string"),
        ({"keys": "https://keys"}, "keys must build a key source"),
        ({"role_claims": "roles"}, "role_claims"),
    ],
)
def test_bad_settings_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MultiTenantProvider("entra", "https://login.example.com/{tenant}", tenants=["a"], **options)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_issuers": 0}, "TenantLimits.max_issuers must be >= 1"),
        ({"idle_timeout": -1}, "TenantLimits.idle_timeout"),
        ({"max_new": 0}, "TenantLimits.max_new must be >= 1"),
        ({"new_window": 0}, "TenantLimits.new_window"),
    ],
)
def test_bad_limits_fail_at_construction(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TenantLimits(**limits)
    assert message in str(caught.value)


def test_tenants_that_are_not_ids_never_fit(idp: FakeTenants) -> None:
    multi = provider(idp)
    for odd in ("a/b", "", "../x", "a?b", "x" * 200):
        assert multi.tenant_of(idp.url + f"/{odd}/v2.0") is None
    assert multi.tenant_of(idp.issuer("contoso")) == "contoso"


def test_a_permissive_tenant_callable_cannot_buy_a_discovery_per_token(idp: FakeTenants) -> None:
    """With "any tenant" allowed, 200 tokens naming 200 attacker-chosen tenants cost at most
    max_new discoveries per window (the rest: 503 with Retry-After, no network call);
    known tenants are served as ever, and the window frees new ones again."""
    from authgate import KeySourceUnavailable, ProviderUnavailable

    clock = Clock()
    multi = provider(
        idp,
        tenants=lambda tenant: True,
        limits=TenantLimits(max_new=5, new_window=60),
        upstream=Upstream(clock=clock),
    )
    auth = Authenticator([multi], cache=None)
    assert auth.authenticate(bearer(idp.mint("contoso", "ada"))) is not None
    stranger = idp.factories["outsider"]
    answers: dict[str, int] = {}
    waits: list[float | None] = []
    for i in range(200):
        forged = stranger.mint("mallory", iss=idp.issuer(f"tenant-{i:04d}"))
        try:
            auth.authenticate(bearer(forged))
        except ProviderUnavailable as exc:  # the bound: no network call
            waits.append(exc.retry_after)
            answers["bounded"] = answers.get("bounded", 0) + 1
        except KeySourceUnavailable:  # a discovery was tried (this fake knows no such tenant)
            answers["discovered"] = answers.get("discovered", 0) + 1
    discoveries = sum(
        idp.calls(f"/tenant-{i:04d}/v2.0/.well-known/openid-configuration") for i in range(200)
    )
    assert discoveries == 4  # contoso took the first of the five
    assert answers == {"discovered": 4, "bounded": 196}
    assert all(wait is not None and 1 <= wait <= 60 for wait in waits)
    assert auth.authenticate(bearer(idp.mint("contoso", "ada"))) is not None  # still served
    clock.now += 61
    assert auth.authenticate(bearer(idp.mint("fabrikam", "bo"))) is not None  # a new window


def test_failed_discoveries_never_take_a_working_tenants_slot(idp: FakeTenants) -> None:
    """With max_issuers=2, tenants whose discovery fails are dropped before a working
    tenant: contoso's verifier (and its fetched keys) survives a stream of failing tenants."""
    multi = provider(
        idp, tenants=lambda tenant: True, limits=TenantLimits(max_issuers=2, max_new=100)
    )
    auth = Authenticator([multi], cache=None)
    assert auth.authenticate(bearer(idp.mint("contoso", "ada"))) is not None
    stranger = idp.factories["outsider"]
    for i in range(10):
        with pytest.raises(AuthGateError):
            auth.authenticate(bearer(stranger.mint("m", iss=idp.issuer(f"ghost-{i}"))))
    assert idp.issuer("contoso") in multi.issuers
    before = idp.requests_for("contoso")
    assert auth.authenticate(bearer(idp.mint("contoso", "ada"))) is not None
    assert idp.requests_for("contoso") == before  # its keys were kept: no new fetch
