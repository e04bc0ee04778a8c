"""Introspection by the RFCs, and a breaker that anonymous clients cannot move.

Against real servers on 127.0.0.1: FakeIntrospection decodes client credentials as RFC 6749
servers do and answers junk with 400 when asked to; the vendors' fakes answer junk with their
documented rejections.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from authgate import (
    Authenticator,
    AuthonProvider,
    BadAudience,
    BadIssuer,
    ClientAuth,
    EndpointProvider,
    IntrospectionProvider,
    InvalidToken,
    MoriProvider,
    NotYetValid,
    Provider,
    ProviderUnavailable,
    RemotePolicy,
    VeryChatProvider,
)
from authgate.testing import (
    Answer,
    FakeAuthon,
    FakeIntrospection,
    FakeServer,
    FakeVeryChat,
    json_answer,
)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "secret",
    ["a+b/c=d%e f", "pl+us+only", "==//==", "100%sure", "sp ace", "x:y:z"],
    ids=["all", "plus", "padding", "percent", "space", "colons"],
)
@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_secrets_with_form_special_characters_work(secret: str, method: str) -> None:
    """RFC 6749 §2.3.1: each part of Basic credentials is form-urlencoded before base64; a
    server decoding them as specified accepts secrets with + / = % and spaces."""
    with FakeIntrospection(client_id="resource:api", client_secret=secret) as idp:
        provider = IntrospectionProvider(
            "idp",
            idp.introspection_url,
            auth=getattr(ClientAuth, method)("resource:api", secret),
            audience=idp.audience,
            issuer=idp.url,
        )
        principal = Authenticator([provider]).authenticate(bearer(idp.issue("alice")))
        assert principal is not None
        assert principal.subject == "alice"


@pytest.fixture
def idp() -> Iterator[FakeIntrospection]:
    """An introspection server that answers junk with 400."""
    with FakeIntrospection(junk_status=400) as server:
        yield server


def provider_for(idp: FakeIntrospection, **options: Any) -> IntrospectionProvider:
    """A strict provider for ``idp``: audience and issuer checked."""
    return IntrospectionProvider(
        "idp",
        idp.introspection_url,
        auth=ClientAuth.basic(idp.client_id, idp.client_secret),
        audience=options.pop("audience", idp.audience),
        issuer=options.pop("issuer", idp.url),
        **options,
    )


def test_tokens_for_another_audience_or_issuer_are_refused(idp: FakeIntrospection) -> None:
    """A token issued for another resource server, or by another issuer, is a 401 even though
    the server says it is active."""
    auth = Authenticator([provider_for(idp)])
    with pytest.raises(BadAudience):
        auth.authenticate(bearer(idp.issue("eve", audience="billing-service")))
    other = Authenticator([provider_for(idp, issuer="https://elsewhere.example")])
    with pytest.raises(BadIssuer):
        other.authenticate(bearer(idp.issue("eve")))
    assert auth.authenticate(bearer(idp.issue("ok"))) is not None


def test_answer_times_are_checked_as_a_jwts(idp: FakeIntrospection) -> None:
    """An answer whose nbf or iat lies in the future (beyond the leeway) is not valid yet."""
    auth = Authenticator([provider_for(idp)])
    token = idp.issue("later")
    idp.tokens[token]["nbf"] = idp.tokens[token]["iat"] + 3600
    with pytest.raises(NotYetValid):
        auth.authenticate(bearer(token))


JUNK = [f"junk-{secrets.token_hex(6)}" for _ in range(500)] + [
    f"eyJhbGciOiJub25lIn0.{secrets.token_urlsafe(12)}.{secrets.token_urlsafe(8)}"
    for _ in range(500)
]


def test_a_thousand_junk_tokens_never_open_the_breaker(idp: FakeIntrospection) -> None:
    """1,000 distinct junk values (opaque and JWT-shaped) answered 400: each is the client's
    401, the breaker stays closed, a valid token then gets in, and memory stays bounded by
    the policy's cache size."""
    provider = provider_for(idp, policy=RemotePolicy(cache_size=100))
    auth = Authenticator([provider])
    for junk in JUNK:
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(bearer(junk))
        assert caught.value.reason == "invalid_token"
    principal = auth.authenticate(bearer(idp.issue("valid")))
    assert principal is not None
    assert principal.subject == "valid"
    assert provider.client._failures == 0
    assert len(provider.client._results) <= 100
    assert idp.calls(idp.PATH) == 1001


class JunkRejecter(FakeServer):
    """A verify endpoint: 200 for 'good-token', 400 for anything else."""

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if headers.get("authorization") == "Bearer good-token":
            return json_answer(200, {"sub": "u1", "exp": int(time.time()) + 3600})
        return json_answer(400, {"error": "invalid_token"})


@pytest.mark.parametrize("vendor", ["authon", "verychat", "mori", "remote-verifier"])
def test_the_vendors_junk_rejections_never_open_the_breaker(vendor: str) -> None:
    """The same for Authon, VeryChat, Mori and EndpointProvider: junk answered with the
    documented rejections leaves the breaker closed and a valid token gets in."""
    if vendor == "authon":
        server: Any = FakeAuthon()
    elif vendor == "verychat":
        server = FakeVeryChat()
    else:
        server = JunkRejecter()
    with server:
        provider: Provider
        if vendor == "authon":
            provider = AuthonProvider(secret_key=server.secret_key, base_url=server.url)
            good = server.sign_in(server.add_user()["id"])
        elif vendor == "verychat":
            provider = VeryChatProvider(project_id=server.project_id, base_url=server.url)
            good = server.get_tokens("@someone")
        elif vendor == "mori":
            provider = MoriProvider(endpoint=server.url + "/verify")
            good = "good-token"
        else:
            provider = EndpointProvider("v", server.url + "/verify")
            good = "good-token"
        auth = Authenticator([provider])
        for junk in JUNK[:300] + JUNK[-300:]:
            with pytest.raises(InvalidToken) as caught:
                auth.authenticate(bearer(junk))
            assert caught.value.reason == "invalid_token"
        assert auth.authenticate(bearer(good)) is not None
        assert provider.remote is not None
        assert provider.remote._failures == 0


# -- issue 10, points 6 and 7: names and reasons --------------------------------------------


@pytest.mark.parametrize("allowed", ["EdDSA", "Ed25519"])
@pytest.mark.parametrize("header_alg", ["EdDSA", "Ed25519"])
@pytest.mark.parametrize("key_alg", [None, "EdDSA", "Ed25519"])
def test_ed25519_and_eddsa_name_one_algorithm(
    allowed: str, header_alg: str, key_alg: str | None
) -> None:
    """RFC 9864's fully specified 'Ed25519' and 'EdDSA' are the same algorithm with an Ed25519
    key: in the allowlist, in the key's alg member and in the token header, in any mix."""
    import json

    from authgate import JWTVerifier, KeySet
    from authgate.testing import SigningKey, TokenFactory

    key = SigningKey("EdDSA", kid="ed")
    jwk = key.public_jwk()
    jwk.pop("alg", None)
    if key_alg is not None:
        jwk["alg"] = key_alg
    verifier = JWTVerifier(KeySet.from_jwk(jwk), algorithms=[allowed])
    factory = TokenFactory(key=key)
    header = json.dumps({"alg": header_alg, "kid": "ed", "typ": "JWT"})
    token = factory.sign(header, json.dumps(factory.claims("ed-user")))
    assert verifier.verify(token)["sub"] == "ed-user"


def test_a_foreign_issuer_is_bad_issuer_whatever_the_key_cache_holds() -> None:
    """A token whose iss matches no configured issuer is bad_issuer, before any key lookup:
    with no keys fetched yet, and with keys cached (it was key_not_found then)."""
    from authgate import BadIssuer, JWKSKeySource, JWTVerifier
    from authgate.testing import LocalIssuer, SigningKey, TokenFactory

    with LocalIssuer("ES256") as issuer:
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url), algorithms=["ES256"], issuer=issuer.url
        )
        foreign = TokenFactory(key=SigningKey("ES256", kid="other"), issuer="https://evil.example")
        with pytest.raises(BadIssuer):
            verifier.verify(foreign.mint("x"))
        assert verifier.verify(issuer.mint("warm"))["sub"] == "warm"  # keys now cached
        with pytest.raises(BadIssuer):
            verifier.verify(foreign.mint("x"))
        same_kid = TokenFactory(
            key=SigningKey("ES256", kid=issuer.factory.key.kid), issuer="https://evil.example"
        )
        with pytest.raises(BadIssuer):
            verifier.verify(same_kid.mint("x"))
        assert issuer.jwks_requests == 1


def test_failures_name_their_cause_to_operators_only() -> None:
    """A refused connection and an unresolvable host are told apart in .detail; the client's
    message is the same generic one for both."""
    import socket

    from authgate import ProviderUnavailable

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    import httpx

    from authgate import Upstream

    def no_dns(request: httpx.Request) -> httpx.Response:
        # what httpcore raises when the resolver fails (no DNS query leaves this machine)
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("name resolution failed", request=request) from exc

    refused = EndpointProvider("v", f"http://127.0.0.1:{closed}/verify")
    unresolvable = EndpointProvider(
        "w",
        "https://idp.internal.example/verify",
        upstream=Upstream(transport=httpx.MockTransport(no_dns)),
    )
    details = []
    for provider in (refused, unresolvable):
        with pytest.raises(ProviderUnavailable) as caught:
            Authenticator([provider]).authenticate(bearer("opaque-value"))
        assert caught.value.message == "the identity provider cannot be reached right now"
        details.append(caught.value.detail)
    assert "connection was refused" in details[0]
    assert "does not resolve" in details[1]


def test_a_sender_constrained_introspection_answer_is_refused(idp: FakeIntrospection) -> None:
    """An opaque token whose introspection answer carries cnf (a DPoP key thumbprint) is
    refused: its binding cannot be verified, and it is not cached."""
    auth = Authenticator([provider_for(idp)])
    token = idp.issue("ada", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    for _ in range(2):
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(bearer(token))
        assert (caught.value.reason, caught.value.claim) == ("unverified_binding", "cnf")
    assert auth.stats.hits == 0


# -- issue 21, point 1: introspection as servers really answer ------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("typ", "Refresh"),  # Keycloak, whatever token_type_hint says
        ("typ", "Offline"),
        ("typ", "ID"),
        ("token_use", "refresh_token"),  # Ory Hydra
        ("token_type", "refresh_token"),
        ("token_type", "Refresh"),
    ],
)
def test_an_answer_for_a_refresh_or_id_token_is_refused(
    idp: FakeIntrospection, member: str, value: str
) -> None:
    """Servers introspect refresh tokens too (active: true): one sent as a Bearer token would
    serve for as long as the refresh token lives. The answer's kind of token is checked."""
    auth = Authenticator([provider_for(idp)])
    kind: dict[str, Any] = {member: value}
    token = idp.issue("ada", **kind)
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(token))
    assert (caught.value.message, caught.value.claim) == (
        "the token is not an access token",
        member,
    )


def test_an_answer_calling_the_token_dpop_without_its_key_is_refused(
    idp: FakeIntrospection,
) -> None:
    """token_type DPoP with no cnf.jkt: a bound token whose key is unknown never passes as a
    Bearer token (RFC 9449 §7.2)."""
    auth = Authenticator([provider_for(idp)])
    cnfs: list[Any] = [None, {"x5t#S256": "abc"}, {"jkt": 5}]
    for cnf in cnfs:
        with pytest.raises(InvalidToken) as caught:
            auth.authenticate(bearer(idp.issue("ada", token_type="DPoP", cnf=cnf)))
        assert caught.value.claim == "cnf"


@pytest.mark.parametrize(
    "kind",
    [{"typ": "Bearer"}, {"token_use": "access_token"}, {"token_type": "bearer"},
     {"token_type": None}],
    ids=["keycloak", "hydra", "token-type-bearer", "no-kind-at-all"],
)  # fmt: skip
def test_an_answer_for_an_access_token_is_accepted(
    idp: FakeIntrospection, kind: dict[str, Any]
) -> None:
    auth = Authenticator([provider_for(idp)])
    principal = auth.authenticate(bearer(idp.issue("ada", **kind)))
    assert principal is not None
    assert principal.subject == "ada"


def test_jwts_locally_and_opaque_tokens_by_introspection_from_one_issuer() -> None:
    """One identity provider, two credential kinds: its JWTs verified locally (no call), its
    opaque tokens introspected; two local verifiers for one issuer are still refused."""
    from authgate import ConfigurationError, JWKSKeySource, JWTProvider, JWTVerifier
    from authgate.testing import LocalIssuer

    with FakeIntrospection() as idp, LocalIssuer("ES256") as issuer:
        local = JWTProvider(
            "local",
            JWTVerifier(JWKSKeySource(issuer.jwks_url), algorithms=["ES256"], issuer=issuer.url),
        )
        remote = provider_for(idp, issuer=issuer.url)
        auth = Authenticator([remote, local])
        assert auth.authenticate(bearer(issuer.mint("ada"))).provider == "local"  # type: ignore[union-attr]
        assert idp.calls(idp.PATH) == 0
        opaque = auth.authenticate(bearer(idp.issue("bo", iss=issuer.url)))  # one issuer
        assert opaque is not None
        assert (opaque.provider, opaque.subject) == ("idp", "bo")
        twin = JWTProvider("twin", local.verifier)
        with pytest.raises(ConfigurationError, match="same issuer"):
            Authenticator([local, twin])


def test_a_dot_style_answer_names_each_user_not_their_client(idp: FakeIntrospection) -> None:
    """django-oauth-toolkit answers with username and client_id and no sub: alice and bob of
    one client are two subjects; a client-credentials token (no username) is its client's;
    subject_claim= names another member."""
    auth = Authenticator([provider_for(idp)])
    alice = auth.authenticate(bearer(idp.issue(None, client_id="webapp", username="alice")))
    bob = auth.authenticate(bearer(idp.issue(None, client_id="webapp", username="bob")))
    machine = auth.authenticate(bearer(idp.issue(None, client_id="cron-job")))
    assert [p.subject for p in (alice, bob, machine)] == ["alice", "bob", "cron-job"]  # type: ignore[union-attr]
    named = Authenticator([provider_for(idp, subject_claim="uid")])
    assert named.authenticate(bearer(idp.issue(None, uid="u-42"))).subject == "u-42"  # type: ignore[union-attr]


def test_an_answer_without_iss_is_accepted_and_a_wrong_one_refused(
    idp: FakeIntrospection,
) -> None:
    """RFC 7662 makes iss optional: an answer without it passes the configured issuer; an
    answer naming another issuer is bad_issuer."""
    auth = Authenticator([provider_for(idp)])
    assert auth.authenticate(bearer(idp.issue("ada", iss=None))) is not None
    with pytest.raises(BadIssuer):
        auth.authenticate(bearer(idp.issue("eve", iss="https://elsewhere.example")))


def test_a_resource_server_may_introspect_with_a_bearer_token_of_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """django-oauth-toolkit's documented way: the resource server sends its own token (one
    with the introspection scope) as Bearer; the answer (username, no sub, no iss) names each
    user. Another token is refused as our configuration error (503), and never logged."""
    resource_token = "rs_" + "x" * 30
    with FakeIntrospection(resource_token=resource_token, client_secret="unused") as server:
        provider = IntrospectionProvider(
            "dot",
            server.introspection_url,
            auth=ClientAuth.bearer(resource_token),
            audience=server.audience,
            issuer=server.url,
        )
        auth = Authenticator([provider])
        users = [server.issue(None, client_id="webapp", username=u, iss=None) for u in "ab"]
        assert [auth.authenticate(bearer(t)).subject for t in users] == ["a", "b"]  # type: ignore[union-attr]
        wrong = IntrospectionProvider(
            "dot", server.introspection_url, auth=ClientAuth.bearer("rs_" + "y" * 30)
        )
        with pytest.raises(ProviderUnavailable):
            Authenticator([wrong]).authenticate(bearer(users[0]))
    assert "client credentials" in caplog.text
    assert "x" * 30 not in caplog.text
    assert "y" * 30 not in caplog.text
    assert "x" * 30 not in repr(provider.auth)
    assert provider.secrets() == (resource_token,)
