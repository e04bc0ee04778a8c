"""Certificate-bound tokens (RFC 8705 §3): a token with cnf.x5t#S256 is accepted only from the
client holding that certificate, found in the ASGI TLS extension or a proxy's header."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate import (
    Authenticator,
    ConfigurationError,
    InvalidRequest,
    JWTProvider,
    JWTVerifier,
    UnverifiedBinding,
)
from authgate.asgi import AuthGateMiddleware
from authgate.extract import Credential, credential_from_headers, with_request
from authgate.mtls import ClientCertificates, certificate_asgi, thumbprint_of_pem
from authgate.testing import DPoPClient, TokenFactory, b64url, serve_asgi, serve_wsgi
from authgate.testing.pki import PrivateCA
from authgate.wsgi import ENVIRON_KEY, AuthGateWSGIMiddleware

ISSUER = "https://issuer.test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return PrivateCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_pem(pki: PrivateCA) -> str:
    return Path(pki.client_cert).read_text()


@pytest.fixture(scope="module")
def other_pem(pki: PrivateCA) -> str:
    return Path(pki.server_cert).read_text()


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory("ES256", issuer=ISSUER)


def authenticator(tokens: TokenFactory, certificates: ClientCertificates | None) -> Authenticator:
    verifier = JWTVerifier(tokens.keyset(), algorithms=["ES256"], issuer=ISSUER)
    return Authenticator([JWTProvider("idp", verifier)], client_certificates=certificates)


def test_the_thumbprint_is_the_sha256_of_the_der(client_pem: str) -> None:
    der = x509.load_pem_x509_certificate(client_pem.encode()).public_bytes(Encoding.DER)
    assert thumbprint_of_pem(client_pem) == b64url(hashlib.sha256(der).digest())


def test_a_header_value_reads_only_as_its_own_format(client_pem: str) -> None:
    """One process, two proxies' formats: a value read as nginx's PEM is no Envoy XFCC value
    (nor the other way round), whichever was read first."""
    from urllib.parse import quote

    from authgate.mtls import certificate_wsgi

    escaped = quote(client_pem)
    nginx = ClientCertificates(header="x-client-cert", format="pem")
    envoy = ClientCertificates(header="x-client-cert", format="xfcc")
    environ = {"HTTP_X_CLIENT_CERT": escaped}
    assert certificate_wsgi(environ, nginx) == thumbprint_of_pem(client_pem)
    assert certificate_wsgi(environ, envoy) is None
    xfcc = {"HTTP_X_CLIENT_CERT": f'Hash={"ab" * 32};Subject="CN=x"'}
    assert certificate_wsgi(xfcc, envoy) is not None
    assert certificate_wsgi(xfcc, nginx) is None


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.identity})


def scope_with(pem: str | None, token: str) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/whoami",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }
    if pem is not None:
        scope["extensions"] = {"tls": {"client_cert_chain": [pem], "tls_version": 0x0304}}
    return scope


def call(app: Any, scope: dict[str, Any]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_asgi_tls_extension_proves_the_binding(
    tokens: TokenFactory, client_pem: str, other_pem: str
) -> None:
    """The right certificate passes, every time (the second from the cache); another one,
    or none, is refused, also once the token is cached."""
    auth = authenticator(tokens, ClientCertificates())
    app = AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), auth)
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    for _ in range(2):
        assert call(app, scope_with(client_pem, token)) == (200, b'{"subject":"alice"}')
    status, body = call(app, scope_with(other_pem, token))
    assert (status, b"another client certificate" in body) == (401, True)
    status, body = call(app, scope_with(None, token))
    assert (status, b"presents none" in body) == (401, True)
    plain = tokens.mint("bob")  # an unbound token passes with or without a certificate
    assert call(app, scope_with(other_pem, plain))[0] == 200
    assert call(app, scope_with(None, plain))[0] == 200


def test_without_a_certificate_source_bound_tokens_are_refused(
    tokens: TokenFactory, client_pem: str
) -> None:
    auth = authenticator(tokens, None)
    app = AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), auth)
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    status, body = call(app, scope_with(client_pem, token))
    assert (status, b"no client_certificates source" in body) == (401, True)


def test_a_certificate_bound_token_never_takes_the_hit_path(
    tokens: TokenFactory, client_pem: str, other_pem: str
) -> None:
    """Its cache entry is not the Bearer entry: a request with another certificate, or with
    none, is checked, never served from the hit path."""
    auth = authenticator(tokens, ClientCertificates())
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    good = Credential("bearer", token, certificate=thumbprint_of_pem(client_pem))
    assert auth.verify_credential(good).subject == "alice"
    assert auth.cache is not None
    assert auth.cache.entries.get(f"Bearer {token}".encode()[-16:]) is None
    with pytest.raises(UnverifiedBinding):
        auth.verify_credential(good._replace(certificate=thumbprint_of_pem(other_pem)))
    with pytest.raises(UnverifiedBinding):
        auth.verify_credential(Credential("bearer", token))


def test_a_token_bound_to_a_key_and_a_certificate_needs_both_on_every_request(
    tokens: TokenFactory, client_pem: str, other_pem: str
) -> None:
    """Cached under its DPoP key, which a request without the certificate finds too, the
    token still needs the certificate each time: in the shell and in verify_credential."""
    auth = authenticator(tokens, ClientCertificates())
    app = app_behind(auth)
    client = DPoPClient()
    token = tokens.mint("alice", cnf={**client.cnf, "x5t#S256": thumbprint_of_pem(client_pem)})

    def scope(pem: str | None) -> dict[str, Any]:
        headers = client.headers(token, "GET", "http://api.example.com/whoami")
        found = scope_with(pem, token)
        found["headers"] = [(b"host", b"api.example.com")] + [
            (name.encode(), value.encode()) for name, value in headers.items()
        ]
        return found

    for _ in range(2):  # admitted, then from the cache
        assert call(app, scope(client_pem)) == (200, b'{"subject":"alice"}')
    status, body = call(app, scope(None))
    assert (status, b"presents none" in body) == (401, True)
    status, body = call(app, scope(other_pem))
    assert (status, b"another client certificate" in body) == (401, True)
    uri = "https://api.example.com/x"
    proved = with_request(credential_from_headers(client.headers(token, "GET", uri)), "GET", uri)
    assert proved is not None
    with pytest.raises(UnverifiedBinding, match="presents none"):
        auth.verify_credential(proved)


def app_behind(auth: Authenticator) -> AuthGateMiddleware:
    return AuthGateMiddleware(Starlette(routes=[Route("/whoami", whoami)]), auth)


def test_nginx_escaped_cert_header_under_uvicorn(
    tokens: TokenFactory, client_pem: str, other_pem: str
) -> None:
    """nginx: proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert (URL-encoded PEM)."""
    auth = authenticator(tokens, ClientCertificates(header="X-SSL-Client-Cert"))
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    bearer = {"authorization": f"Bearer {token}"}
    with serve_asgi(app_behind(auth)) as base, httpx.Client(base_url=base) as http:
        for _ in range(2):
            ok = http.get("/whoami", headers={**bearer, "x-ssl-client-cert": quote(client_pem)})
            assert ok.json() == {"subject": "alice"}
        other = http.get("/whoami", headers={**bearer, "x-ssl-client-cert": quote(other_pem)})
        assert other.status_code == 401
        assert http.get("/whoami", headers=bearer).status_code == 401
        junk = http.get("/whoami", headers={**bearer, "x-ssl-client-cert": "not-a-cert"})
        assert junk.status_code == 401
        two = [*bearer.items(), ("x-ssl-client-cert", "a"), ("x-ssl-client-cert", "b")]
        assert http.get("/whoami", headers=two).status_code == 400


def xfcc(pem: str, *, by_hash: bool) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    if by_hash:
        # Envoy quotes Subject, whose RFC 2253 form holds commas and may hold semicolons
        subject = 'Subject="CN=Test Client,OU=Payments;EU,O=Example\\"Inc\\",C=US"'
        return f"By=spiffe://api;Hash={hashlib.sha256(der).hexdigest()};{subject};DNS=a.test"
    return f'By=spiffe://api;Cert="{quote(pem)}"'


@pytest.mark.parametrize("by_hash", [True, False], ids=["hash", "cert"])
def test_envoy_xfcc_header(by_hash: bool, tokens: TokenFactory, client_pem: str) -> None:
    settings = ClientCertificates(header="x-forwarded-client-cert", format="xfcc")
    auth = authenticator(tokens, settings)
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    scope = scope_with(None, token)
    scope["headers"].append(
        (b"x-forwarded-client-cert", xfcc(client_pem, by_hash=by_hash).encode())
    )
    assert certificate_asgi(scope, settings) == thumbprint_of_pem(client_pem)
    assert call(app_behind(auth), scope)[0] == 200
    several = xfcc(client_pem, by_hash=by_hash) + "," + xfcc(client_pem, by_hash=by_hash)
    scope["headers"][-1] = (b"x-forwarded-client-cert", several.encode())
    with pytest.raises(InvalidRequest):
        certificate_asgi(scope, settings)
    # a stray quote is not Envoy's: no certificate (or a 400), never a hash read past it
    for broken in (
        '"' + xfcc(client_pem, by_hash=by_hash),
        xfcc(client_pem, by_hash=by_hash) + '"',
    ):
        scope["headers"][-1] = (b"x-forwarded-client-cert", broken.encode())
        try:
            found = certificate_asgi(scope, settings)
        except InvalidRequest:
            found = None
        assert found is None


@pytest.fixture
def wsgi_base(tokens: TokenFactory) -> Iterator[str]:
    auth = authenticator(tokens, ClientCertificates(header="x-ssl-client-cert"))

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [environ[ENVIRON_KEY].identity.encode()]

    with serve_wsgi(AuthGateWSGIMiddleware(app, auth)) as base:
        yield base


def test_a_wsgi_server_checks_the_proxys_certificate_header(
    wsgi_base: str, tokens: TokenFactory, client_pem: str, other_pem: str
) -> None:
    token = tokens.mint("alice", cnf={"x5t#S256": thumbprint_of_pem(client_pem)})
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=wsgi_base) as http:
        for _ in range(2):
            ok = http.get("/", headers={**bearer, "x-ssl-client-cert": quote(client_pem)})
            assert ok.text == "alice"
        other = http.get("/", headers={**bearer, "x-ssl-client-cert": quote(other_pem)})
        assert other.status_code == 401
        assert http.get("/", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"header": ""}, "header name"),
        ({"header": "x-cert\r\n"}, "cannot be sent"),
        ({"format": "der"}, "'pem' or 'xfcc'"),
        ({"tls_extension": False}, "needs a header"),
        ({"format": "xfcc"}, "give header= too"),
    ],
)
def test_certificate_settings_mistakes_fail_at_construction(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ClientCertificates(**settings)


def test_authenticator_refuses_anything_else_as_certificates(tokens: TokenFactory) -> None:
    with pytest.raises(ConfigurationError, match="client_certificates must be"):
        authenticator(tokens, "x-ssl-client-cert")  # type: ignore[arg-type]
