"""WebSocket handshakes over real servers, each its own process on a free 127.0.0.1 port:
uvicorn, hypercorn and granian. Where the server offers the ASGI ``websocket.http.response``
extension, a refused handshake gets the HTTP answer (401, WWW-Authenticate, the JSON body);
elsewhere the handshake is closed before accept (code 1008), which servers answer 403."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from authgate.testing import SigningKey, TokenFactory, free_port

from .ws_app import ISSUER, SECRET

ROOT = Path(__file__).resolve().parents[1]


def command(server: str, port: int) -> list[str]:
    target, host = "tests.ws_app:app", "127.0.0.1"
    return {
        "uvicorn": ["uvicorn", target, "--host", host, "--port", str(port), "--lifespan", "off"],
        "hypercorn": ["hypercorn", target, "--bind", f"{host}:{port}"],
        "granian": ["granian", "--interface", "asgi", target, "--host", host, "--port", str(port)],
    }[server]


@pytest.fixture(params=["uvicorn", "hypercorn", "granian"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    name: str = request.param
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", *command(name, port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    assert process.stderr is not None
                    raise RuntimeError(
                        f"{name} did not start: {process.stderr.read()[-2000:]!r}"
                    ) from None
                time.sleep(0.05)
        yield name, f"ws://127.0.0.1:{port}/ws"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr is not None:
            process.stderr.close()


def test_a_valid_token_opens_the_socket(server: tuple[str, str]) -> None:
    _, url = server
    token = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER).mint("ada")
    with connect(url, additional_headers={"authorization": f"Bearer {token}"}) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"user": "ada"}


@pytest.mark.parametrize(
    ("headers", "challenge", "message"),
    [
        ({}, 'Bearer realm="sockets"', "authentication required"),
        (
            {"authorization": "Bearer " + "e30.e30." + "A" * 43},  # {}.{}.signature
            'Bearer realm="sockets", error="invalid_token"',
            "the header has no 'alg'",
        ),
    ],
    ids=["no-credential", "bad-token"],
)
def test_a_refused_handshake_gets_the_http_answer(
    server: tuple[str, str], headers: dict[str, str], challenge: str, message: str
) -> None:
    """All three servers offer websocket.http.response (uvicorn 0.54, hypercorn 0.18, granian
    2.8 measured): the client sees 401, the challenge and the JSON body, as over HTTP."""
    _, url = server
    with pytest.raises(InvalidStatus) as caught, connect(url, additional_headers=headers):
        pass
    response = caught.value.response
    assert response.status_code == 401
    bearer, dpop = response.headers.get_all("www-authenticate")
    assert bearer.startswith(challenge)
    assert dpop.startswith('DPoP realm="sockets", algs="ES256')
    assert response.headers["cache-control"] == "no-store"
    body = json.loads(response.body or b"")
    assert body["statusCode"] == 401
    assert body["error"] == "Unauthorized"
    assert body["message"].startswith(message)


def test_a_cookie_token_opens_the_socket_only_from_the_apps_own_origin(
    server: tuple[str, str],
) -> None:
    """Cross-site WebSocket hijacking: a browser sends the cookie with a handshake another
    site's page starts (a GET, yet it opens a channel acting for the user). The token cookie
    is read only when the Origin is the app's own, or from a client that is no browser."""
    _, url = server
    token = TokenFactory(key=SigningKey("HS256", private=SECRET), issuer=ISSUER).mint("ada")
    cookie = {"cookie": f"session={token}"}
    own = "http://" + url.split("/")[2]  # the Host the client sends
    for origin in (Origin(own), None):
        with connect(url, additional_headers=cookie, origin=origin) as ws:
            assert json.loads(ws.recv(timeout=5)) == {"user": "ada"}
    for origin in (Origin("https://evil.example"), Origin("null")):
        with (
            pytest.raises(InvalidStatus) as caught,
            connect(url, additional_headers=cookie, origin=origin),
        ):
            pass
        assert caught.value.response.status_code == 403
        body = json.loads(caught.value.response.body or b"")
        assert body["message"].startswith("a token from the session cookie"), body
