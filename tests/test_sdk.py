"""A provider written outside the package, from the SDK alone (no ``authgate._`` import).

``Acme`` verifies opaque tokens at its own endpoint (a real HTTP server on 127.0.0.1) and
takes its own API keys: what a user adding an identity provider would write.
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from authgate import Authenticator, InvalidToken, ProviderUnavailable
from authgate.providers import (
    Claims,
    Credential,
    Plan,
    Principal,
    Provider,
    RemoteProvider,
    Request,
    Response,
    Upstream,
    UpstreamError,
    check_url,
    principal_from_claims,
)
from authgate.testing import Answer, FakeServer, free_port, json_answer


class AcmeServer(FakeServer):
    """Acme's verify endpoint: ``POST /verify {"token": …}`` → 200 user, 404 unknown, 500."""

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        token = json.loads(body or b"{}").get("token")
        if token == "acme-good-token":
            expiry = int(time.time()) + 3600
            return json_answer(200, {"user": {"id": "u-7", "org": "acme"}, "exp": expiry})
        if token == "acme-down":
            return json_answer(500, {"error": "boom"})
        return json_answer(404, {"error": "unknown token"})


class AcmeProvider(RemoteProvider):
    """Acme tokens, verified at Acme's endpoint."""

    def __init__(self, base_url: str, *, upstream: Upstream | None = None) -> None:
        self.url = check_url(base_url + "/verify", "Acme's base_url")
        super().__init__("acme", upstream=upstream)

    def plan(self, token: str) -> Plan[Claims]:
        response: Response = yield Request("POST", self.url, {}, json={"token": token})
        if response.status == 404:
            raise InvalidToken("Acme does not know this token")
        if response.status != 200:
            raise UpstreamError(f"Acme answered HTTP {response.status}", status=response.status)
        body = response.json()
        return {"sub": body["user"]["id"], "org_id": body["user"]["org"], "exp": body["exp"]}


class AcmeKeys(Provider):
    """Acme service keys (``acme_…``), from x-api-key or as a Bearer value."""

    name = "acme-keys"
    accepts_jwt = False
    accepts_api_keys = True

    def accepts_api_key(self, value: str, *, from_header: bool) -> bool:
        return value.startswith("acme_")

    def verify(self, credential: Credential) -> Principal:
        if credential.value != "acme_0123456789abcdef":
            raise InvalidToken("unknown Acme key")
        return principal_from_claims(
            {"sub": "svc-billing"}, provider=self.name, credential="api_key"
        )

    async def verify_async(self, credential: Credential) -> Principal:
        return self.verify(credential)


@pytest.fixture
def acme() -> Iterator[AcmeServer]:
    """Acme's endpoint on a free loopback port."""
    with AcmeServer() as server:
        yield server


def test_an_sdk_provider_verifies_at_its_endpoint(acme: AcmeServer) -> None:
    """Acme's opaque token is accepted once, then served from the remote cache; a token Acme
    does not know is a 401; Acme's outage is our 503."""
    auth = Authenticator([AcmeKeys(), AcmeProvider(acme.url)])
    principal = auth.authenticate({"authorization": "Bearer acme-good-token"})
    assert principal is not None
    assert (principal.subject, principal.tenant, principal.provider) == ("u-7", "acme", "acme")
    assert principal.credential == "opaque"
    assert principal.verified_by == "remote"
    assert auth.authenticate({"authorization": "Bearer acme-good-token"}) is not None
    assert acme.calls("/verify") == 1
    with pytest.raises(InvalidToken, match="Acme does not know"):
        auth.authenticate({"authorization": "Bearer someone-else"})
    with pytest.raises(ProviderUnavailable):
        auth.authenticate({"authorization": "Bearer acme-down"})


@pytest.mark.anyio
async def test_an_sdk_provider_verifies_async(acme: AcmeServer) -> None:
    """The same provider works from async code, with no extra method written."""
    auth = Authenticator([AcmeProvider(acme.url)])
    principal = await auth.authenticate_async({"authorization": "Bearer acme-good-token"})
    assert principal is not None
    assert principal.subject == "u-7"


def test_an_sdk_key_provider_is_routed_by_its_attribute(acme: AcmeServer) -> None:
    """accepts_api_keys routes Acme keys to AcmeKeys, from x-api-key or as a Bearer value;
    other Bearer values go past it to the endpoint."""
    auth = Authenticator([AcmeKeys(), AcmeProvider(acme.url)])
    for headers in (
        {"x-api-key": "acme_0123456789abcdef"},
        {"authorization": "Bearer acme_0123456789abcdef"},
    ):
        principal = auth.authenticate(headers)
        assert principal is not None
        assert (principal.subject, principal.credential) == ("svc-billing", "api_key")
    assert acme.calls("/verify") == 0


def test_this_file_needs_no_private_import() -> None:
    """The SDK is enough: nothing here imports a private authgate module."""
    tree = ast.parse(Path(__file__).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    authgate_modules = [m for m in modules if m and m.startswith("authgate")]
    assert authgate_modules == ["authgate", "authgate.providers", "authgate.testing"]


def test_free_port_keeps_to_its_xdist_workers_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel workers never pick the same port: each takes its own residue."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    ports = [free_port() for _ in range(64)]
    assert all(26000 <= port < 29000 for port in ports)  # gw2's slice of 20000-31999
    assert len(set(ports)) == 64  # none handed out twice in a row
