"""A private certificate authority for tests: TLS to fake identity providers on 127.0.0.1.

``PrivateCA(folder)`` writes a CA, a server certificate for ``127.0.0.1`` and a client
certificate (for mutual TLS), each as PEM files, and builds the server's TLS context::

    ca = PrivateCA(tmp_path)
    issuer = LocalIssuer("ES256")
    issuer.tls = ca.server_context()
    upstream = authgate.Upstream(verify=str(ca.ca_cert))

The keys are fresh P-256 keys, valid for one day; nothing private ever leaves ``folder``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["PrivateCA"]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


class PrivateCA:
    """A CA with one server certificate (for ``127.0.0.1``) and one client certificate.

    Args:
        folder: where the PEM files are written.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._ca = self._sign(_name("authgate test CA"), self._key, ca=True, ip=False)
        self.ca_cert = folder / "ca.crt"
        """The CA certificate (what ``Upstream(verify=...)`` trusts)."""
        self.ca_cert.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = self._issue(folder / "server", "127.0.0.1", ip=True)
        self.client_cert, self.client_key = self._issue(
            folder / "client", "resource-server", ip=False
        )

    def server_context(self, *, require_client: bool = False) -> ssl.SSLContext:
        """A server's TLS context: the server certificate, optionally demanding a client
        certificate signed by this CA (mutual TLS).

        Args:
            require_client: refuse clients without a certificate from this CA.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_cert)
        return context

    def _issue(self, path: Path, subject: str, *, ip: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._sign(_name(subject), key, ca=False, ip=ip)
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

    def _sign(
        self, subject: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool, ip: bool
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(_name("authgate test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # what strict X.509 verification (Python 3.13's default) demands of every cert
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(self._key, hashes.SHA256())
