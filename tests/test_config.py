"""Configuration mistakes fail at construction, with a message that says what to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authgate import (
    APIKeyRing,
    Authenticator,
    AuthonProvider,
    CacheLimits,
    ClientAuth,
    ConfigurationError,
    Endpoint,
    EndpointProvider,
    IntrospectionProvider,
    JWKSKeySource,
    JWTProvider,
    JWTVerifier,
    KeyFetchPolicy,
    KeySet,
    MoriProvider,
    MultiTenantProvider,
    OIDCKeySource,
    RemotePolicy,
    TokenCookie,
    Upstream,
    VeryChatProvider,
)
from authgate.asgi import AuthGateMiddleware
from authgate.providers import TenantLimits, entra
from authgate.wsgi import AuthGateWSGIMiddleware

SECRET = b"s" * 32


def verifier(**options: Any) -> JWTVerifier:
    """An HS256 verifier over SECRET; options override."""
    kwargs: dict[str, Any] = {"algorithms": ["HS256"], **options}
    return JWTVerifier(KeySet.from_secret(SECRET), **kwargs)


def provider(name: str = "p", issuer: str | None = None) -> JWTProvider:
    """A JWT provider named ``name`` with issuer ``issuer``."""
    return JWTProvider(name, verifier(issuer=issuer))


CASES: list[Any] = [
    pytest.param(
        lambda: verifier(required_claims="exp"),
        "required_claims must be a list of names, not one string: ['exp']",
        id="required-claims-string",
    ),
    pytest.param(
        lambda: verifier(algorithms="HS256"),
        "algorithms must be a list of names, not one string: ['HS256']",
        id="algorithms-string",
    ),
    pytest.param(
        lambda: APIKeyRing(prefixes="sk_live_"),
        "prefixes must be a list of names, not one string: ['sk_live_']",
        id="prefixes-string",
    ),
    pytest.param(
        lambda: JWTProvider("p", verifier(), tenant_claims="tid"),
        "tenant_claims must be a list of names, not one string",
        id="tenant-claims-string",
    ),
    pytest.param(
        lambda: Endpoint("https://v.example/c", json={"t": "{token}"}, form={"t": "{token}"}),
        "an Endpoint sends a json or a form body, not both",
        id="endpoint-two-bodies",
    ),
    pytest.param(
        lambda: Endpoint("https://v.example/c", read_claims="sub"),  # type: ignore[arg-type]
        "Endpoint.read_claims must be callable",
        id="endpoint-reader-not-callable",
    ),
    pytest.param(
        lambda: Endpoint("https://v.example/c", form=[("t", "{token}")]),  # type: ignore[arg-type]
        "Endpoint.form must be a mapping of field names to templates",
        id="endpoint-form-pairs",
    ),
    pytest.param(
        lambda: Endpoint("https://v.example/c", method="GET /x"),
        "method must be an HTTP method name",
        id="endpoint-method",
    ),
    pytest.param(
        lambda: EndpointProvider("v", {"url": "https://v.example/c"}),  # type: ignore[arg-type]
        "the verification URL must be a URL or an authgate.Endpoint",
        id="endpoint-dict",
    ),
    pytest.param(
        lambda: MoriProvider(endpoint=Endpoint("http://mori.example/verify")),
        "Mori's endpoint must use https",
        id="mori-endpoint-http",
    ),
    pytest.param(
        lambda: ClientAuth.basic("", "secret"),
        "introspection needs a client_id and client_secret",
        id="client-auth-no-id",
    ),
    pytest.param(
        lambda: ClientAuth.bearer(""),
        "ClientAuth.bearer needs the resource server's token",
        id="client-auth-no-token",
    ),
    pytest.param(
        lambda: ClientAuth("private_key_jwt", "api", "k"),
        "ClientAuth.method must be 'client_secret_basic', 'client_secret_post' or 'bearer'",
        id="client-auth-method",
    ),
    pytest.param(
        lambda: IntrospectionProvider("i", "https://i.example/in", auth=("api", "s")),  # type: ignore[arg-type]
        "auth must be an authgate.ClientAuth, e.g. ClientAuth.basic(client_id, secret)",
        id="client-auth-tuple",
    ),
    pytest.param(
        lambda: Authenticator(provider()),  # type: ignore[arg-type]
        "pass the providers as a list: Authenticator([provider])",
        id="single-provider",
    ),
    pytest.param(
        lambda: Authenticator([provider(), object()]),  # type: ignore[list-item]
        "providers must be authgate Provider objects, not object",
        id="not-a-provider",
    ),
    pytest.param(
        lambda: Authenticator("providers"),  # type: ignore[arg-type]
        "providers must be a list of authgate Provider objects",
        id="providers-string",
    ),
    pytest.param(lambda: Authenticator([]), "at least one provider", id="no-providers"),
    pytest.param(
        lambda: Authenticator([provider("a", "https://i"), provider("b", "https://i")]),
        "two providers have the same issuer 'https://i'",
        id="duplicate-issuer",
    ),
    pytest.param(
        lambda: Authenticator([provider("a"), provider("a")]),
        "provider names must be unique",
        id="duplicate-name",
    ),
    pytest.param(
        lambda: CacheLimits(max_entries=0),
        "CacheLimits.max_entries must be >= 1",
        id="zero-entries",
    ),
    pytest.param(
        lambda: CacheLimits(max_bytes=1.5),  # type: ignore[arg-type]
        "CacheLimits.max_bytes must be a whole number, not float",
        id="fractional-bytes",
    ),
    pytest.param(
        lambda: CacheLimits(max_ttl="300"),  # type: ignore[arg-type]
        "CacheLimits.max_ttl must be a finite number, not str",
        id="ttl-string",
    ),
    pytest.param(
        lambda: Authenticator([provider()], cache={"max_entries": 5}),  # type: ignore[arg-type]
        "cache must be an authgate.CacheLimits, or None (no cache)",
        id="cache-not-limits",
    ),
    pytest.param(
        lambda: CacheLimits(max_ttl=-5), "CacheLimits.max_ttl must be >= 0", id="negative-ttl"
    ),
    pytest.param(
        lambda: Authenticator([provider()], max_credential_bytes=0),
        "max_credential_bytes must be >= 1",
        id="zero-credential-cap",
    ),
    pytest.param(
        lambda: Authenticator([provider()], max_token_lifetime=float("inf")),
        "max_token_lifetime must be a finite number",
        id="infinite-lifetime",
    ),
    pytest.param(
        lambda: Authenticator([provider()], realm='a"b'),
        "the realm must be printable text without quotes or backslashes",
        id="quoted-realm",
    ),
    pytest.param(
        lambda: Authenticator([provider()]).add_listener(42),  # type: ignore[arg-type]
        "an event listener must be callable",
        id="listener-not-callable",
    ),
    pytest.param(
        lambda: Authenticator([provider()], cookie="access_token"),  # type: ignore[arg-type]
        "cookie must be an authgate.TokenCookie",
        id="cookie-not-a-TokenCookie",
    ),
    pytest.param(lambda: TokenCookie(""), "must be a cookie name", id="empty-cookie"),
    pytest.param(lambda: TokenCookie("a=b"), "must be a cookie name", id="cookie-name-with-equals"),
    pytest.param(
        lambda: TokenCookie("t", trusted_origins="https://app.example.com"),
        "a list of origins, not one string",
        id="trusted-origins-one-string",
    ),
    pytest.param(
        lambda: TokenCookie("t", trusted_origins=["https://app.example.com/login"]),
        "is not an origin",
        id="trusted-origin-with-a-path",
    ),
    pytest.param(
        lambda: TokenCookie("t", trusted_origins=["app.example.com"]),
        "is not an origin",
        id="trusted-origin-without-scheme",
    ),
    pytest.param(
        lambda: TokenCookie("t", trusted_origins=["https://app.example.com:99999"]),
        "is not an origin",
        id="trusted-origin-bad-port",
    ),
    pytest.param(
        lambda: RemotePolicy(failure_ttl=-1),
        "failure_ttl must be >= 0",
        id="policy-failure-ttl",
    ),
    pytest.param(
        lambda: RemotePolicy(cache_size=0),
        "cache_size must be >= 1",
        id="policy-cache-size",
    ),
    pytest.param(
        lambda: Upstream(max_body=0),
        "Upstream.max_body must be a positive number of bytes",
        id="upstream-max-body",
    ),
    pytest.param(
        lambda: KeyFetchPolicy(cooldown=True),
        "cooldown must be a finite number, not bool",
        id="fetch-cooldown-bool",
    ),
    pytest.param(
        lambda: Upstream(timeout=0),
        "Upstream.timeout must be a number of seconds > 0",
        id="upstream-timeout",
    ),
    pytest.param(
        lambda: JWKSKeySource("https://k.example/jwks", upstream="fast"),  # type: ignore[arg-type]
        "upstream must be an authgate.Upstream",
        id="upstream-type",
    ),
    pytest.param(
        lambda: JWKSKeySource("https://k.example/jwks", policy=RemotePolicy()),  # type: ignore[arg-type]
        "policy must be an authgate.KeyFetchPolicy",
        id="policy-type",
    ),
    pytest.param(
        lambda: MoriProvider(keys=KeySet.from_secret(SECRET), algorithms=["HS256"], api_keys={}),  # type: ignore[arg-type]
        "api_keys must be an authgate.APIKeyRing",
        id="ring-type",
    ),
    # settings that would be silently ignored: refused instead
    pytest.param(
        lambda: AuthonProvider("sk_test_abc", audience="my-api"),
        "Authon's issuer and audience are checked on local verification: give keys= too",
        id="authon-audience-without-keys",
    ),
    pytest.param(
        lambda: AuthonProvider("sk_test_abc", issuer="https://api.authon.dev"),
        "Authon's issuer and audience are checked on local verification: give keys= too",
        id="authon-issuer-without-keys",
    ),
    pytest.param(
        lambda: MoriProvider(endpoint="https://mori.example/verify", issuer="https://mori"),
        "Mori's algorithms and issuer are for local verification: give keys= too",
        id="mori-issuer-without-keys",
    ),
    pytest.param(
        lambda: MoriProvider(endpoint="https://mori.example/verify", algorithms=["ES256"]),
        "Mori's algorithms and issuer are for local verification: give keys= too",
        id="mori-algorithms-without-keys",
    ),
    pytest.param(
        lambda: MultiTenantProvider(
            "t",
            "https://login.example.com/{tenant}/v2.0",
            tenants=["a"],
            keys=OIDCKeySource,
            policy=KeyFetchPolicy(cooldown=5),
        ),
        "policy is for the default key sources: with keys=, give each source its policy",
        id="tenants-policy-with-keys",
    ),
    pytest.param(
        lambda: MoriProvider(endpoint=Endpoint("https://mori.example/verify"), leeway=-1),
        "leeway must be >= 0",
        id="mori-remote-negative-leeway",
    ),
    pytest.param(
        lambda: MoriProvider(endpoint=Endpoint("https://mori.example/verify"), leeway="30"),  # type: ignore[arg-type]
        "leeway must be a finite number",
        id="mori-remote-leeway-text",
    ),
    pytest.param(
        lambda: IntrospectionProvider(
            "i", "https://i.example/in", auth=ClientAuth.basic("a", "b"), leeway=3600
        ),
        "leeway must be at most 300 seconds",
        id="introspection-leeway-of-an-hour",
    ),
    pytest.param(
        lambda: VeryChatProvider("proj", leeway=60),
        "VeryChat's leeway is for local verification: give the secret too",
        id="verychat-leeway-without-secret",
    ),
    pytest.param(
        lambda: VeryChatProvider("proj", "s" * 32, policy=RemotePolicy(success_ttl=5)),
        "verychat: policy= sets how a verification endpoint is called, and none is configured",
        id="policy-without-endpoint",
    ),
    pytest.param(
        lambda: entra("api://app", tenant_id="contoso", limits=TenantLimits(max_new=5)),
        "limits bound the tenants met: they need tenants, not tenant_id",
        id="entra-limits-one-tenant",
    ),
]


@pytest.mark.parametrize(("build", "message"), CASES)
def test_configuration_mistakes_fail_at_construction(
    build: Callable[[], object], message: str
) -> None:
    """Each mistake raises ConfigurationError whose message names it."""
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert message in caught.value.message


PLACEHOLDER_SECRETS: list[Any] = [
    pytest.param(
        lambda s: AuthonProvider(secret_key=s, base_url="http://127.0.0.1:1"),
        "sk_live_\u2026",
        "Authon's secret_key cannot be sent in an HTTP header",
        id="authon-secret",
    ),
    pytest.param(
        lambda s: IntrospectionProvider(
            "idp", "http://127.0.0.1:1/introspect", auth=ClientAuth.basic("api", s)
        ),
        "s3cr\u2026t",
        "client_secret cannot be sent in an HTTP header",
        id="introspection-secret",
    ),
    pytest.param(
        lambda s: EndpointProvider("v", Endpoint("http://127.0.0.1:1/v", headers={"x-api-key": s})),
        "key with a trailing space ",
        "x-api-key cannot be sent in an HTTP header",
        id="verifier-header",
    ),
    pytest.param(
        lambda s: MoriProvider(endpoint=Endpoint("http://127.0.0.1:1/v", headers={"x-key": s})),
        "line\r\nbreak",
        "x-key cannot be sent in an HTTP header",
        id="mori-header",
    ),
]


@pytest.mark.parametrize(("build", "secret", "message"), PLACEHOLDER_SECRETS)
def test_unsendable_secrets_fail_at_construction(
    build: Callable[[str], object], secret: str, message: str
) -> None:
    """A secret that cannot travel in an HTTP header is refused at once, and not echoed."""
    with pytest.raises(ConfigurationError) as caught:
        build(secret)
    assert message in caught.value.message
    assert secret.strip() not in caught.value.message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"exclude_paths": "/health"}, "not one string", id="paths-string"),
        pytest.param({"exclude_paths": ["health"]}, "starting with '/'", id="relative-path"),
        pytest.param({"required": "yes"}, "required must be True or False", id="required-str"),
    ],
)
def test_shell_mistakes_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """Both shells refuse bad paths and flags with a message that names them."""
    auth = Authenticator([provider()])
    for shell in (AuthGateMiddleware, AuthGateWSGIMiddleware):
        with pytest.raises(ConfigurationError) as caught:
            shell(lambda *a: None, auth, **options)  # type: ignore[arg-type]
        assert message in caught.value.message


def test_a_transport_travels_in_upstream_only() -> None:
    """The transport given in ``Upstream`` is the one used; no provider or key source takes
    ``transport=`` or ``async_transport=`` itself (they live on ``Upstream``)."""
    import inspect

    import authgate
    from authgate.providers import Provider

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"sub": "u1"})

    upstream = Upstream(transport=httpx.MockTransport(answer))
    remote = EndpointProvider("v", "https://verify.example/check", upstream=upstream)
    principal = Authenticator([remote]).authenticate({"authorization": "Bearer opaque-token"})
    assert principal is not None
    assert principal.subject == "u1"
    assert seen == ["https://verify.example/check"]
    constructors = [
        value
        for value in vars(authgate).values()
        if inspect.isclass(value)
        and (issubclass(value, Provider) or value.__name__.endswith("KeySource"))
    ]
    assert len(constructors) >= 10
    for cls in constructors:
        parameters = inspect.signature(cls).parameters
        assert not {"transport", "async_transport"} & set(parameters), cls.__name__


def _mistakes(tmp_path: Any) -> list[tuple[Callable[[], object], str]]:
    """Configuration mistakes a newcomer makes, each with what the refusal must say."""
    from authgate import JWKSKeySource, KeySet
    from authgate.redis import RedisStore

    secret_file = tmp_path / "hmac.key"
    secret_file.write_text("s" * 40)
    auth = Authenticator([EndpointProvider("v", "https://verify.example/check")])
    return [
        (lambda: RedisStore("localhost:6379"), "must start with redis://"),
        (lambda: KeySet.from_secret(str(secret_file)), "names a file"),
        (
            lambda: JWKSKeySource("https://user:pass@keys.example/jwks.json"),
            "user name or password",
        ),
        (
            lambda: AuthGateMiddleware(lambda *a: None, auth, exclude_paths=["/health/"]),  # type: ignore[arg-type]
            "never matches '/health'",
        ),
    ]


@pytest.mark.parametrize("case", range(4), ids=["redis-url", "secret-path", "userinfo", "slash"])
def test_a_newcomers_mistakes_are_refused_at_construction(case: int, tmp_path: Any) -> None:
    """Each is refused when built, saying what to write instead (they were accepted, then
    failed forever or never matched)."""
    build, message = _mistakes(tmp_path)[case]
    with pytest.raises(ConfigurationError, match=message):
        build()
