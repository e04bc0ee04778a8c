"""authgate.django in-process: TokenUser as Django's auth machinery reads a user, the settings'
mistakes, the async path, DPoP and an outage (the real servers are tests/test_django.py's)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import path

from authgate import (
    APIKeyProvider,
    APIKeyRing,
    Authenticator,
    JWTProvider,
    JWTVerifier,
    Principal,
)
from authgate.django import AuthGateMiddleware, TokenUser, authenticate_request, authenticator
from authgate.testing import DPoPClient, TokenFactory

from . import django_project

django_project.application()  # settings configured once per process (as tests/test_wsgi.py's)


ISSUER = "https://issuer.test"
TOKENS = TokenFactory("ES256", issuer=ISSUER)
AUTH = Authenticator(
    [JWTProvider("idp", JWTVerifier(TOKENS.keyset(), algorithms=["ES256"], issuer=ISSUER))]
)


def principal(**claims: Any) -> Principal:
    return AUTH.authenticate({"authorization": f"Bearer {TOKENS.mint('alice', **claims)}"})  # type: ignore[return-value]


def test_token_user_reads_as_a_django_user() -> None:
    user = TokenUser(principal(scope="orders:read orders.view_order"), {"orders:read": ["a.b"]})
    assert (user.is_authenticated, user.is_anonymous, user.is_active) == (True, False, True)
    assert (user.get_username(), str(user), user.natural_key()) == ("alice", "alice", ("alice",))
    assert user.get_all_permissions() == {"orders:read", "orders.view_order", "a.b"}
    assert user.has_perm("a.b")
    assert user.has_perms(["a.b", "orders.view_order"])
    assert not user.has_perms(["a.b", "x.y"])
    assert user.has_module_perms("orders")
    assert not user.has_module_perms("billing")
    assert user.get_group_permissions() == set()
    assert user.get_user_permissions() == user.get_all_permissions()
    assert user == TokenUser(principal())
    assert len({user, TokenUser(principal())}) == 1
    assert "alice" in repr(user)
    with pytest.raises(ValueError, match="iterable"):
        user.has_perms("a.b")
    with pytest.raises(NotImplementedError):
        user.save()
    with pytest.raises(NotImplementedError):
        user.delete()
    with pytest.raises(NotImplementedError, match="no password"):
        user.check_password("x")
    with pytest.raises(NotImplementedError, match="no password"):
        user.set_password("x")


def test_token_users_are_one_user_only_within_one_provider_and_issuer() -> None:
    """A subject is unique within its issuer: the same ``sub`` from two tenants of one
    provider, or from two providers, is two users (never merged in a set or a dict)."""
    alice = TokenUser(Principal(subject="1", provider="tenants", issuer="https://a.test"))
    assert alice == TokenUser(Principal(subject="1", provider="tenants", issuer="https://a.test"))
    others = [
        Principal(subject="1", provider="tenants", issuer="https://b.test"),
        Principal(subject="1", provider="other", issuer="https://a.test"),
        Principal(subject="2", provider="tenants", issuer="https://a.test"),
    ]
    for principal in others:
        assert alice != TokenUser(principal)
    assert len({alice, *(TokenUser(p) for p in others)}) == 4
    # what keys per user on pk (DRF's throttles, caches) keeps them apart as well
    same = TokenUser(Principal(subject="1", provider="tenants", issuer="https://a.test"))
    assert alice.pk == alice.id == same.pk
    assert re.fullmatch(r"[0-9a-f]{32}", str(alice.pk))
    tricky = [
        Principal(subject="1", provider="tenants", issuer=None),
        Principal(subject="1", provider="tenants", issuer="None"),
        Principal(subject="a.test\x001", provider="tenants", issuer="https:/"),
        Principal(subject="caf\u00e9 \ud800", provider="tenants", issuer="https://a.test"),
    ]
    keys = {TokenUser(p).pk for p in [*others, *tricky]}
    assert len(keys | {alice.pk}) == 1 + len(others) + len(tricky)


def test_permissions_from_a_callable() -> None:
    user = TokenUser(principal(), lambda p: [f"tenant.{p.subject}"])
    assert user.has_perm("tenant.alice")
    assert not user.has_perm("authenticated")  # the implicit scope is no permission


def view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"user": request.user.get_username()})


async def async_view(request: HttpRequest) -> HttpResponse:
    return view(request)


def test_the_sync_and_async_paths() -> None:
    with override_settings(AUTHGATE={"AUTHENTICATOR": AUTH}):
        sync_and_async()


def sync_and_async() -> None:
    factory = RequestFactory()
    token = TOKENS.mint("alice")
    sync = AuthGateMiddleware(view)
    assert sync(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")).status_code == 200
    refused = sync(factory.get("/", HTTP_AUTHORIZATION="Bearer a.b.c"))
    assert refused.status_code == 401
    assert refused["www-authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    assert 'DPoP realm="api"' in refused["www-authenticate"]
    anonymous = factory.get("/")
    anonymous.user = "left as Django made it"
    assert AuthGateMiddleware(lambda r: HttpResponse(str(r.user)))(anonymous).content == (
        b"left as Django made it"
    )
    lazy = AuthGateMiddleware(async_view)
    answer = asyncio.run(lazy(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")))
    assert answer.status_code == 200
    bad = asyncio.run(lazy(factory.get("/", HTTP_AUTHORIZATION="Bearer a.b.c")))
    assert bad.status_code == 401


def test_dpop_through_django() -> None:
    with override_settings(AUTHGATE={"AUTHENTICATOR": AUTH}):
        dpop_through_django()


def dpop_through_django() -> None:
    client = DPoPClient()
    token = TOKENS.mint("alice", cnf=client.cnf)
    headers = client.headers(token, "GET", "http://testserver/me")
    request = RequestFactory().get(
        "/me", HTTP_AUTHORIZATION=headers["authorization"], HTTP_DPOP=headers["dpop"]
    )
    assert AuthGateMiddleware(view)(request).status_code == 200
    assert authenticate_request(request) is request.auth
    stolen = RequestFactory().get("/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert AuthGateMiddleware(view)(stolen).status_code == 401
    # a path beginning '//' is a path on this host, never another origin (Django's
    # build_absolute_uri reads '//evil.example/me' as that host's URL)
    for htu, status in [
        ("http://evil.example/me", 401),
        ("http://testserver//evil.example/me", 200),
    ]:
        headers = client.headers(token, "GET", htu)
        request = RequestFactory().get(
            "/me",
            PATH_INFO="//evil.example/me",  # as a WSGI server passes it (the factory parses it)
            HTTP_AUTHORIZATION=headers["authorization"],
            HTTP_DPOP=headers["dpop"],
        )
        assert AuthGateMiddleware(view)(request).status_code == status, htu


def factory_of_authenticator() -> Authenticator:
    return AUTH


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (None, "set AUTHGATE"),
        ({"AUTHENTICATOR": 7}, "must be an authgate.Authenticator"),
        ({"AUTHENTICATOR": "tests.test_django_unit.ISSUER"}, "got str"),
        ({"AUTHENTICATOR": AUTH, "PERMISSIONS": ["a.b"]}, "PERMISSIONS"),
    ],
)
def test_settings_mistakes_fail_at_start_up(setting: Any, message: str) -> None:
    with override_settings(AUTHGATE=setting), pytest.raises(ImproperlyConfigured, match=message):
        AuthGateMiddleware(view)


DJANGO_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
OURS = "authgate.django.AuthGateMiddleware"
UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"


@pytest.mark.parametrize(
    ("middleware", "refused"),
    [
        ([OURS, DJANGO_AUTH], True),
        ([OURS, "tests.django_site_middleware.OwnAuthentication"], True),
        (["tests.test_django_unit.Missing", DJANGO_AUTH, OURS], False),
        ([DJANGO_AUTH, OURS], False),
        ([OURS], False),
        ([UPDATE_CACHE, DJANGO_AUTH, OURS, FETCH_CACHE], False),
        ([UPDATE_CACHE, FETCH_CACHE, DJANGO_AUTH, OURS], True),
        (["django.middleware.cache.CacheMiddleware", OURS], True),
    ],
)
def test_djangos_authentication_after_ours_is_refused(middleware: list[str], refused: bool) -> None:
    """After ours, Django's AuthenticationMiddleware (or a subclass) would set request.user
    again, to the session's user, beside the token's request.auth; before ours, Django's site
    cache would answer before a token is checked (a signed-out one too): refused at start-up."""
    settings = override_settings(
        AUTHGATE={"AUTHENTICATOR": AUTH},
        MIDDLEWARE=middleware,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    )
    with settings:
        if refused:
            with pytest.raises(ImproperlyConfigured, match=r"put \S+ after \S+ in MIDDLEWARE"):
                AuthGateMiddleware(view)
        else:
            AuthGateMiddleware(view)


@pytest.mark.parametrize(
    "configured",
    ["tests.test_django_unit.AUTH", "tests.test_django_unit.factory_of_authenticator"],
)
def test_a_dotted_path_or_a_factory(configured: str) -> None:
    with override_settings(AUTHGATE={"AUTHENTICATOR": configured}):
        assert authenticator() is AUTH


def who(request: HttpRequest) -> JsonResponse:
    """Who the request is from, anonymous included (Django's site cache keeps the page)."""
    found = getattr(request, "auth", None)
    return JsonResponse({"user": None if found is None else found.identity})


urlpatterns = [path("who", who)]
SITE_KEY = "sk_live_0123456789abcdefghij"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_site_cache_never_serves_one_clients_page_to_another(mode: str) -> None:
    """Django's site-wide cache keys a page by the response's Vary: every response varies
    on the credentials authgate reads, so a page cached for an API key (which Django's cache
    does not know about) is not served to anyone else, nor one cached for no credential to a
    token's holder. Under WSGI and ASGI (the middleware's sync and async paths)."""
    ring = APIKeyRing()
    ring.add(SITE_KEY, subject="billing")
    verifier = JWTVerifier(TOKENS.keyset(), algorithms=["ES256"], issuer=ISSUER)
    auth = Authenticator([JWTProvider("idp", verifier), APIKeyProvider("keys", ring)])
    site_cache = override_settings(
        AUTHGATE={"AUTHENTICATOR": auth},
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[
            "django.middleware.cache.UpdateCacheMiddleware",
            "authgate.django.AuthGateMiddleware",
            "django.middleware.cache.FetchFromCacheMiddleware",
        ],
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"site-{mode}",
            }
        },
        CACHE_MIDDLEWARE_SECONDS=60,
    )
    alice = {"authorization": f"Bearer {TOKENS.mint('alice')}"}
    bob = {"authorization": f"Bearer {TOKENS.mint('bob')}"}
    key = {"x-api-key": SITE_KEY}
    expected = [(key, "billing"), ({}, None), (alice, "alice"), (bob, "bob"), (key, "billing")]
    with site_cache:
        if mode == "sync":
            client = Client()
            answers = [client.get("/who", headers=headers) for headers, _ in expected]
        else:
            async_client = AsyncClient()

            async def ask_all() -> list[Any]:
                return [await async_client.get("/who", headers=h) for h, _ in expected]

            answers = asyncio.run(ask_all())
    assert [a.json()["user"] for a in answers] == [user for _, user in expected]
    assert {"Authorization", "x-api-key"} <= set(map(str.strip, answers[3]["vary"].split(",")))


GUARD_MISTAKES = [
    ((), "needs at least one"),
    ((["orders:read", "orders:write"],), "as its own argument"),
    (("orders:read", ""), "non-empty string"),
    ((7,), "non-empty string"),
]
SCOPE_MISTAKES = [
    (("orders:read orders:write",), "is not one scope"),
    (('orders:"read"',), "is not one scope"),
]


@pytest.mark.parametrize(("kind", "args", "reason"), [
    *[(kind, args, reason) for kind in ("scope", "role") for args, reason in GUARD_MISTAKES],
    *[("scope", args, reason) for args, reason in SCOPE_MISTAKES],
])  # fmt: skip
def test_every_frameworks_guard_refuses_a_mistake_at_construction(
    kind: str, args: tuple[Any, ...], reason: str
) -> None:
    """FastAPI's, Flask's and DRF's guards refuse at construction what would check nothing
    (no name), answer 500 on every request (a list: unhashable) or never grant (``"a b"``:
    a token's scopes are granted one by one), each saying what to write instead."""
    from authgate import ConfigurationError, drf, fastapi, flask

    guards = {
        "scope": (fastapi.require_scopes, flask.require_scopes, drf.scopes),
        "role": (fastapi.require_roles, flask.require_roles, drf.roles),
    }
    for guard in guards[kind]:
        with pytest.raises(ConfigurationError, match=reason):
            guard(*args)


def test_every_frameworks_guard_takes_names_as_arguments() -> None:
    from authgate import drf, fastapi, flask

    for guard in (fastapi.require_scopes, flask.require_scopes, drf.scopes):
        assert guard("orders:read", "api://6e1f/Orders.Write") is not None
    for guard in (fastapi.require_roles, flask.require_roles, drf.roles):
        assert guard("Order Admins", "viewer") is not None
    assert drf.scopes("a", "b")().required == frozenset({"a", "b"})
