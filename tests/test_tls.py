"""TLS to identity providers: a private CA, mutual TLS, and plain http only where allowed.

A CA, a server certificate for 127.0.0.1 and a client certificate are generated per session
(nothing private is committed); LocalIssuer serves its JWKS over real TLS on 127.0.0.1.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from authgate import (
    ClientAuth,
    ConfigurationError,
    EndpointProvider,
    JWKSKeySource,
    JWTVerifier,
    KeySourceUnavailable,
    OIDCKeySource,
    Upstream,
)
from authgate.testing import LocalIssuer
from authgate.testing.pki import PrivateCA


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate."""
    return PrivateCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_issuer(pki: PrivateCA) -> Iterator[LocalIssuer]:
    """A LocalIssuer serving https with the private CA's certificate."""
    issuer = LocalIssuer("ES256")
    issuer.tls = pki.server_context()
    with issuer:
        yield issuer


def test_a_private_ca_given_as_a_file_is_trusted(tls_issuer: LocalIssuer, pki: PrivateCA) -> None:
    """Upstream(verify=<CA file>): keys fetched over real TLS from 127.0.0.1, and OIDC too."""
    assert tls_issuer.url.startswith("https://")
    upstream = Upstream(verify=str(pki.ca_cert))
    for source in (
        JWKSKeySource(tls_issuer.jwks_url, upstream=upstream),
        OIDCKeySource(tls_issuer.url, upstream=upstream),
    ):
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=tls_issuer.url)
        assert verifier.verify(tls_issuer.mint("tls"))["sub"] == "tls"


def test_a_private_ca_given_as_a_context_is_trusted(
    tls_issuer: LocalIssuer, pki: PrivateCA
) -> None:
    """Upstream(verify=ssl.SSLContext) works the same."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    source = JWKSKeySource(tls_issuer.jwks_url, upstream=Upstream(verify=context))
    verifier = JWTVerifier(source, algorithms=["ES256"], issuer=tls_issuer.url)
    assert verifier.verify(tls_issuer.mint("ctx"))["sub"] == "ctx"


def test_an_untrusted_certificate_names_its_cause_to_operators(tls_issuer: LocalIssuer) -> None:
    """Without the CA, the fetch fails; .detail says the certificate did not verify (it read
    'unreachable (ConnectError)'); the client's message stays generic."""
    verifier = JWTVerifier(
        JWKSKeySource(tls_issuer.jwks_url), algorithms=["ES256"], issuer=tls_issuer.url
    )
    with pytest.raises(KeySourceUnavailable) as caught:
        verifier.verify(tls_issuer.mint())
    assert "certificate verification failed" in caught.value.detail
    assert "certificate" not in caught.value.message


def test_mutual_tls_with_a_client_certificate(pki: PrivateCA) -> None:
    """An IdP demanding a client certificate: Upstream(cert=(cert, key)) gets in; without it,
    the TLS failure is named."""
    issuer = LocalIssuer("ES256")
    issuer.tls = pki.server_context(require_client=True)
    with issuer:
        with_cert = Upstream(
            verify=str(pki.ca_cert), cert=(str(pki.client_cert), str(pki.client_key))
        )
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url, upstream=with_cert),
            algorithms=["ES256"],
            issuer=issuer.url,
        )
        assert verifier.verify(issuer.mint("mtls"))["sub"] == "mtls"
        without = JWTVerifier(
            JWKSKeySource(issuer.jwks_url, upstream=Upstream(verify=str(pki.ca_cert))),
            algorithms=["ES256"],
            issuer=issuer.url,
        )
        with pytest.raises(KeySourceUnavailable) as caught:
            without.verify(issuer.mint())
        assert "unreachable" in caught.value.detail


def test_plain_http_to_a_named_host_only_when_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """http://keycloak:8080 is refused unless Upstream(allow_http=("keycloak",)) names it,
    which is logged as a warning at start-up; other hosts stay refused."""
    url = "http://keycloak:8080/realms/main/protocol/openid-connect/certs"
    with pytest.raises(ConfigurationError, match="must use https"):
        JWKSKeySource(url)
    with caplog.at_level(logging.WARNING, logger="authgate.upstream"):
        upstream = Upstream(allow_http=("Keycloak",))
    assert "plain http allowed to keycloak" in caplog.text
    assert JWKSKeySource(url, upstream=upstream).url == url
    assert EndpointProvider("v", "http://keycloak:8080/verify", upstream=upstream).url
    with pytest.raises(ConfigurationError):
        JWKSKeySource("http://elsewhere:8080/certs", upstream=upstream)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"verify": False}, "verify=False is refused", id="verify-false"),
        pytest.param({"verify": "/no/such/ca.pem"}, "cannot be loaded", id="missing-ca"),
        pytest.param({"allow_http": "keycloak"}, "list of host names", id="allow-http-string"),
        pytest.param({"trust_env": "yes"}, "trust_env must be True or False", id="trust-env"),
        pytest.param({"clock": 1.0}, "clock must return seconds", id="clock-not-callable"),
    ],
)
def test_tls_mistakes_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """Bad TLS settings are ConfigurationErrors when the Upstream is built."""
    with pytest.raises(ConfigurationError, match=message):
        Upstream(**options)


def test_tls_connections_are_pooled_and_closed(pki: PrivateCA) -> None:
    """Ten introspection misses over TLS with the private CA: one handshake, one connection,
    closed by Authenticator.close()."""
    import time

    from authgate import Authenticator, IntrospectionProvider
    from authgate.testing import FakeIntrospection

    idp = FakeIntrospection()
    idp.tls = pki.server_context()
    with idp:
        provider = IntrospectionProvider(
            "idp",
            idp.introspection_url,
            auth=ClientAuth.basic(idp.client_id, idp.client_secret),
            upstream=Upstream(verify=str(pki.ca_cert)),
        )
        auth = Authenticator([provider])
        for i in range(10):
            principal = auth.authenticate({"authorization": f"Bearer {idp.issue(f'u{i}')}"})
            assert principal is not None
            assert principal.subject == f"u{i}"
        assert idp.accepted == 1
        auth.close()
        deadline = time.monotonic() + 2
        while idp.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert idp.open_connections == 0
