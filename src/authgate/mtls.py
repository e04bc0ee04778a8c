"""Certificate-bound tokens (RFC 8705 §3): a token whose ``cnf`` carries ``x5t#S256`` is accepted
only from the client holding that certificate.

The request's client certificate comes from the ASGI ``tls`` extension where the server
provides it (``scope["extensions"]["tls"]["client_cert_chain"]``), or from a header that a
TLS-terminating proxy sets and the operator names (never by default: a client can send any
header the proxy does not overwrite):

- ``format="pem"``: a URL-encoded PEM certificate, as nginx's ``$ssl_client_escaped_cert``
  (``proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;``);
- ``format="xfcc"``: Envoy's ``x-forwarded-client-cert`` with ``forward_client_cert_details:
  SANITIZE_SET`` (one element; its ``Hash`` or ``Cert``).

Its SHA-256 thumbprint (base64url of the DER's hash) must equal the token's ``x5t#S256``.
Without a certificate such a token is refused (``UnverifiedBinding``) with a reason that says
which of the two is missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import unquote

from ._cache import Memo
from ._config import header_safe
from .errors import ConfigurationError, InvalidRequest
from .extract import environ_key

__all__ = ["ClientCertificates", "certificate_asgi", "certificate_wsgi", "thumbprint_of_pem"]

_MEMO: Final = 256
_HASH: Final = re.compile(r"[0-9a-fA-F]{64}")
# XFCC: elements split by commas, fields by semicolons, neither inside a double-quoted value
# (Envoy quotes Subject, whose RFC 2253 form holds commas: "CN=Test Client,O=Lyft,C=US")
_QUOTED: Final = r'"(?:[^"\\]|\\.)*"'
_XFCC_ELEMENT: Final = re.compile(rf'(?:[^,"]|{_QUOTED})+')
_XFCC_ELEMENTS: Final = re.compile(rf"{_XFCC_ELEMENT.pattern}(?:,{_XFCC_ELEMENT.pattern})*")
_XFCC_FIELD: Final = re.compile(rf'(?:[^;"]|{_QUOTED})+')
# per format, header value -> thumbprint ("": unusable): a value reads as its own format only
_thumbprints: dict[str, Memo[str, str]] = {"pem": Memo(_MEMO), "xfcc": Memo(_MEMO)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCertificates:
    """Where a request's client certificate is found: pass as
    ``Authenticator(client_certificates=...)``. Without it, every certificate-bound token is
    refused.

    Args:
        header: the header a TLS-terminating proxy sets (and overwrites) with the client's
            certificate, e.g. ``x-ssl-client-cert`` or ``x-forwarded-client-cert``.
        format: ``pem`` (URL-encoded PEM, nginx) or ``xfcc`` (Envoy).
        tls_extension: read the ASGI ``tls`` extension when the server provides it.
    """

    header: str | None = None
    format: Literal["pem", "xfcc"] = "pem"
    tls_extension: bool = True

    def __post_init__(self) -> None:
        if self.header is not None:
            if not isinstance(self.header, str) or not self.header:
                raise ConfigurationError("ClientCertificates.header must be a header name")
            header_safe(self.header, "ClientCertificates.header")
            object.__setattr__(self, "header", self.header.lower())
        if self.format not in ("pem", "xfcc"):
            raise ConfigurationError("ClientCertificates.format must be 'pem' or 'xfcc'")
        if self.format != "pem" and self.header is None:
            raise ConfigurationError("ClientCertificates.format is the header's: give header= too")
        if self.header is None and not self.tls_extension:
            raise ConfigurationError(
                "ClientCertificates needs a header, the TLS extension, or both"
            )

    @property
    def environ_key(self) -> str | None:
        """The header's WSGI environ key."""
        return None if self.header is None else environ_key(self.header)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def thumbprint_of_pem(pem: str) -> str:
    """The RFC 8705 ``x5t#S256`` of a PEM certificate; ``ValueError`` when it is none.

    Args:
        pem: one PEM certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certificate = x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
    return _b64(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def _from_header(value: str, fmt: str) -> str:
    """The thumbprint a proxy's header names (``""``: none usable)."""
    memo = _thumbprints[fmt]
    found = memo.get(value)
    if found is None:
        found = _read(value, fmt)
        memo.put(value, found)
    return found


def _read(value: str, fmt: str) -> str:
    if fmt == "pem":
        try:
            return thumbprint_of_pem(unquote(value))
        except (ValueError, UnicodeEncodeError):
            return ""
    if _XFCC_ELEMENTS.fullmatch(value) is None:
        return ""  # an unbalanced quote, an empty element: not Envoy's
    elements = _XFCC_ELEMENT.findall(value)
    if len(elements) != 1:  # several hops: which one is the client's is the proxy's to say
        raise InvalidRequest("the client certificate header names several certificates")
    fields: dict[str, str] = {}
    for part in _XFCC_FIELD.findall(elements[0]):
        name, sep, field = part.strip().partition("=")
        if sep:
            fields[name.strip().lower()] = field.strip().strip('"')
    digest = fields.get("hash", "")
    if _HASH.fullmatch(digest):
        return _b64(binascii.unhexlify(digest))
    if "cert" in fields:
        return _read(fields["cert"], "pem")
    return ""


def certificate_asgi(scope: Mapping[str, Any], settings: ClientCertificates) -> str | None:
    """The thumbprint of the request's client certificate, or ``None`` when it has none.

    Args:
        scope: the ASGI scope.
        settings: where to look.
    """
    if settings.tls_extension:
        tls = (scope.get("extensions") or {}).get("tls")
        chain = tls.get("client_cert_chain") if isinstance(tls, Mapping) else None
        if isinstance(chain, list | tuple) and chain and isinstance(chain[0], str):
            return _from_header(chain[0], "pem") or None
    if settings.header is None:
        return None
    name = settings.header.encode("latin-1")
    values = [v for n, v in scope.get("headers") or () if n == name and type(v) is bytes]
    if len(values) > 1:
        raise InvalidRequest("the client certificate header names several certificates")
    return _from_header(values[0].decode("latin-1"), settings.format) or None if values else None


def certificate_wsgi(environ: Mapping[str, Any], settings: ClientCertificates) -> str | None:
    """The thumbprint of a WSGI request's client certificate, or ``None``.

    Args:
        environ: the WSGI environ.
        settings: where to look (WSGI has no TLS extension: the header only).
    """
    key = settings.environ_key
    value = environ.get(key) if key is not None else None
    if not isinstance(value, str) or not value:
        return None
    return _from_header(value, settings.format) or None
