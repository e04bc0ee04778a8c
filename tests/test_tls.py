"""TLS to identity providers: a private CA, mutual TLS, and plain http only where allowed.

A CA, a server certificate for 127.0.0.1 and a client certificate are generated per session
(nothing private is committed); LocalIssuer serves its JWKS over real TLS on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authgate import (
    ConfigurationError,
    JWKSKeySource,
    JWTVerifier,
    KeySourceError,
    OIDCKeySource,
    RemoteVerifier,
    Upstream,
)
from authgate.testing import LocalIssuer


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool, ip: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, key: Any, certificate: x509.Certificate) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(
        "authgate test CA", ca_key, _name("authgate test CA"), ca_key, ca=True, ip=False
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False, ip=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("resource-server", client_key, ca.subject, ca_key, ca=False, ip=False)
    ca_cert, _ = _write(folder / "ca", ca_key, ca)
    server_cert, server_key_path = _write(folder / "server", server_key, server)
    client_cert, client_key_path = _write(folder / "client", client_key, client)
    return {
        "ca": ca_cert,
        "server_cert": server_cert,
        "server_key": server_key_path,
        "client_cert": client_cert,
        "client_key": client_key_path,
    }


def server_context(pki: dict[str, Path], *, require_client: bool = False) -> ssl.SSLContext:
    """The fake IdP's TLS: our server certificate, optionally demanding a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki["ca"])
    return context


@pytest.fixture
def tls_issuer(pki: dict[str, Path]) -> Iterator[LocalIssuer]:
    """A LocalIssuer serving https with the private CA's certificate."""
    issuer = LocalIssuer("ES256")
    issuer.tls = server_context(pki)
    with issuer:
        yield issuer


def test_a_private_ca_given_as_a_file_is_trusted(
    tls_issuer: LocalIssuer, pki: dict[str, Path]
) -> None:
    """Upstream(verify=<CA file>): keys fetched over real TLS from 127.0.0.1, and OIDC too."""
    assert tls_issuer.url.startswith("https://")
    upstream = Upstream(verify=str(pki["ca"]))
    for source in (
        JWKSKeySource(tls_issuer.jwks_url, upstream=upstream),
        OIDCKeySource(tls_issuer.url, upstream=upstream),
    ):
        verifier = JWTVerifier(source, algorithms=["ES256"], issuer=tls_issuer.url)
        assert verifier.verify(tls_issuer.mint("tls"))["sub"] == "tls"


def test_a_private_ca_given_as_a_context_is_trusted(
    tls_issuer: LocalIssuer, pki: dict[str, Path]
) -> None:
    """Upstream(verify=ssl.SSLContext) works the same."""
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    source = JWKSKeySource(tls_issuer.jwks_url, upstream=Upstream(verify=context))
    verifier = JWTVerifier(source, algorithms=["ES256"], issuer=tls_issuer.url)
    assert verifier.verify(tls_issuer.mint("ctx"))["sub"] == "ctx"


def test_an_untrusted_certificate_names_its_cause_to_operators(tls_issuer: LocalIssuer) -> None:
    """Without the CA, the fetch fails; .detail says the certificate did not verify (it read
    'unreachable (ConnectError)'); the client's message stays generic."""
    verifier = JWTVerifier(
        JWKSKeySource(tls_issuer.jwks_url), algorithms=["ES256"], issuer=tls_issuer.url
    )
    with pytest.raises(KeySourceError) as caught:
        verifier.verify(tls_issuer.mint())
    assert "certificate verification failed" in caught.value.detail
    assert "certificate" not in caught.value.message


def test_mutual_tls_with_a_client_certificate(pki: dict[str, Path]) -> None:
    """An IdP demanding a client certificate: Upstream(cert=(cert, key)) gets in; without it,
    the TLS failure is named."""
    issuer = LocalIssuer("ES256")
    issuer.tls = server_context(pki, require_client=True)
    with issuer:
        with_cert = Upstream(
            verify=str(pki["ca"]), cert=(str(pki["client_cert"]), str(pki["client_key"]))
        )
        verifier = JWTVerifier(
            JWKSKeySource(issuer.jwks_url, upstream=with_cert),
            algorithms=["ES256"],
            issuer=issuer.url,
        )
        assert verifier.verify(issuer.mint("mtls"))["sub"] == "mtls"
        without = JWTVerifier(
            JWKSKeySource(issuer.jwks_url, upstream=Upstream(verify=str(pki["ca"]))),
            algorithms=["ES256"],
            issuer=issuer.url,
        )
        with pytest.raises(KeySourceError) as caught:
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
    assert RemoteVerifier("v", "http://keycloak:8080/verify", upstream=upstream).url
    with pytest.raises(ConfigurationError):
        JWKSKeySource("http://elsewhere:8080/certs", upstream=upstream)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"verify": False}, "verify=False is refused", id="verify-false"),
        pytest.param({"verify": "/no/such/ca.pem"}, "cannot be loaded", id="missing-ca"),
        pytest.param({"allow_http": "keycloak"}, "list of host names", id="allow-http-string"),
        pytest.param({"trust_env": "yes"}, "trust_env must be True or False", id="trust-env"),
    ],
)
def test_tls_mistakes_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """Bad TLS settings are ConfigurationErrors when the Upstream is built."""
    with pytest.raises(ConfigurationError, match=message):
        Upstream(**options)
