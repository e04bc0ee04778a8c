"""Tools for testing apps protected by authgate: mint tokens, run a local issuer.

``TokenFactory`` mints signed JWTs for any supported algorithm with sensible claims, and
signs arbitrary headers and payloads for negative tests. ``LocalIssuer`` serves a JWKS and an
OIDC discovery document on 127.0.0.1 from a background thread; it can rotate its key, go
down, or misbehave (huge, slow, redirecting or garbage answers), and counts the requests it
gets. Both are for tests and demos only: keys are generated in memory and never persisted.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from .keys import ALGORITHMS, KeySet

__all__ = ["Fault", "LocalIssuer", "SigningKey", "TokenFactory", "b64url", "serve_asgi"]

_CURVE_FOR: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


def b64url(data: bytes | str) -> str:
    """Unpadded base64url of ``data`` (text is UTF-8 encoded).

    Args:
        data: what to encode.
    """
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _generate(alg: str) -> Any:
    family = ALGORITHMS[alg].kty
    if family == "oct":
        return os.urandom(_SECRET_BYTES[alg])
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family == "EC":
        return ec.generate_private_key(_CURVE_FOR[alg]())
    return ed25519.Ed25519PrivateKey.generate()


class SigningKey:
    """A private signing key for one algorithm, generated in memory.

    Args:
        alg: a supported JWS algorithm.
        kid: the key id; a random one when omitted.
        private: an existing private key (or HMAC secret) to use instead of generating one.
    """

    def __init__(self, alg: str = "RS256", *, kid: str | None = None, private: Any = None) -> None:
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r}")
        self.alg = alg
        self.kid = kid if kid is not None else uuid.uuid4().hex[:16]
        self.private: Any = private if private is not None else _generate(alg)
        self._algorithm = get_default_algorithms()[alg]

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"

    @property
    def secret(self) -> bytes:
        """The HMAC secret (HS* keys only)."""
        if not isinstance(self.private, bytes):
            raise TypeError("only HS* keys have a secret")
        return self.private

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (for HS* keys, the secret as an ``oct`` JWK)."""
        if isinstance(self.private, bytes):
            jwk: dict[str, Any] = {"kty": "oct", "k": b64url(self.private)}
        else:
            jwk = json.loads(self._algorithm.to_jwk(self.private.public_key()))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def keyset(self) -> KeySet:
        """A :class:`KeySet` holding this key's public half."""
        return KeySet.from_jwks({"keys": [self.public_jwk()]})

    def sign(self, signing_input: bytes) -> bytes:
        """Sign ``signing_input`` (raw R||S for ECDSA, as JWS requires).

        Args:
            signing_input: ``header.payload`` as ASCII bytes.
        """
        signature: bytes = self._algorithm.sign(signing_input, self.private)
        return signature


class TokenFactory:
    """Mint signed JWTs with sensible claims, or sign anything for negative tests.

    Args:
        alg: the algorithm of the generated key (ignored when ``key`` is given).
        key: the signing key; generated when omitted.
        issuer: the ``iss`` of minted tokens, when set.
        audience: the ``aud`` of minted tokens, when set.
        ttl: seconds from ``iat`` to ``exp``.
        clock: returns the current time in seconds since the epoch.
    """

    def __init__(
        self,
        alg: str = "RS256",
        *,
        key: SigningKey | None = None,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key or SigningKey(alg)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.clock = clock
        self.retired: list[SigningKey] = []

    @property
    def alg(self) -> str:
        """The signing algorithm."""
        return self.key.alg

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on; the old one moves to ``retired``."""
        self.retired.append(self.key)
        self.key = SigningKey(self.key.alg)
        return self.key

    def jwks(self, *, include_retired: bool = True) -> dict[str, Any]:
        """The public JWKS: the current key, and the retired ones unless told otherwise.

        Args:
            include_retired: publish retired keys too (tokens they signed stay valid).
        """
        keys = [self.key, *(self.retired if include_retired else [])]
        return {"keys": [key.public_jwk() for key in keys]}

    def keyset(self) -> KeySet:
        """A static :class:`KeySet` of :meth:`jwks`."""
        return KeySet.from_jwks(self.jwks())

    def claims(self, subject: str = "user-1", **extra: Any) -> dict[str, Any]:
        """The claims a minted token carries: ``sub``, ``iat``, ``exp``, ``iss``, ``aud``, ``jti``.

        Args:
            subject: the ``sub`` claim.
            extra: claims to add or override; a value of ``None`` removes the claim.
        """
        now = int(self.clock())
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": now,
            "exp": now + int(self.ttl),
            "jti": uuid.uuid4().hex,
        }
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        claims.update(extra)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        subject: str = "user-1",
        *,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        """A signed compact JWT for ``subject``.

        Args:
            subject: the ``sub`` claim.
            headers: header members to add or override (``None`` values remove one).
            key: sign with this key instead of the current one.
            claims: claims to add or override (``None`` values remove one).
        """
        signer = key or self.key
        header: dict[str, Any] = {"alg": signer.alg, "typ": "JWT", "kid": signer.kid}
        header.update(headers or {})
        header = {name: value for name, value in header.items() if value is not None}
        return self.sign(json.dumps(header), json.dumps(self.claims(subject, **claims)), signer)

    def sign(self, header: str | bytes, payload: str | bytes, key: SigningKey | None = None) -> str:
        """Sign a raw header and payload, exactly as given (for negative tests).

        Args:
            header: the header JSON text (any bytes at all).
            payload: the payload (any bytes at all).
            key: sign with this key instead of the current one.
        """
        signing_input = f"{b64url(header)}.{b64url(payload)}"
        signature = (key or self.key).sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"


Fault = Literal["down", "garbage", "huge", "slow", "redirect", "hang"]


class LocalIssuer:
    """A JWKS and OIDC discovery server on 127.0.0.1, in a background thread.

    Serves ``/.well-known/jwks.json`` and ``/.well-known/openid-configuration``; its URL is
    the issuer of the tokens its :attr:`factory` mints. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.

    Args:
        alg: the algorithm of its signing key.
        audience: the ``aud`` of minted tokens, when set.
        cache_control: the ``Cache-Control`` header of JWKS answers.
        include_retired: keep publishing keys retired by :meth:`rotate`.
    """

    def __init__(
        self,
        alg: str = "RS256",
        *,
        audience: str | list[str] | None = None,
        cache_control: str = "max-age=600",
        include_retired: bool = True,
    ) -> None:
        self.factory = TokenFactory(alg, audience=audience)
        self.cache_control = cache_control
        self.include_retired = include_retired
        self.extra_keys: list[dict[str, Any]] = []
        """Raw JWKs published after the real ones (e.g. broken keys, for negative tests)."""
        self.fault: Fault | None = None
        """Misbehave on JWKS requests: ``down`` (503), ``garbage`` (200, not JSON),
        ``huge`` (50 MB), ``slow`` (a byte every 0.2 s), ``redirect`` (302), ``hang``."""
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalIssuer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        handler = _handler_for(self)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self.factory.issuer = self.url
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it serves -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, which is also the issuer (``iss``)."""
        if self._server is None:
            raise RuntimeError("the issuer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        """The JWKS URL."""
        return self.url + "/.well-known/jwks.json"

    @property
    def jwks_requests(self) -> int:
        """How many JWKS requests were answered so far."""
        with self._lock:
            return self.requests["/.well-known/jwks.json"]

    def mint(self, subject: str = "user-1", **claims: Any) -> str:
        """A token from :attr:`factory` (see :meth:`TokenFactory.mint`).

        Args:
            subject: the ``sub`` claim.
            claims: claims to add or override.
        """
        return self.factory.mint(subject, **claims)

    def rotate(self) -> SigningKey:
        """Sign with a new key and publish it."""
        return self.factory.rotate()

    def jwks(self) -> dict[str, Any]:
        """The JWKS document currently served."""
        document = self.factory.jwks(include_retired=self.include_retired)
        document["keys"].extend(self.extra_keys)
        return document

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1


def _handler_for(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            issuer._count(path)
            if path == "/.well-known/openid-configuration":
                self._json(200, {"issuer": issuer.url, "jwks_uri": issuer.jwks_url})
            elif path == "/.well-known/jwks.json":
                self._jwks()
            else:
                self._json(404, {"statusCode": 404, "error": "Not Found", "message": "no route"})

        def _jwks(self) -> None:
            fault = issuer.fault
            if fault is None:
                self._json(200, issuer.jwks(), {"cache-control": issuer.cache_control})
            elif fault == "down":
                self._json(503, {"statusCode": 503, "error": "Service Unavailable"})
            elif fault == "garbage":
                self._raw(200, b"<html>not a jwks</html>", "text/html")
            elif fault == "redirect":
                self.send_response(302)
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()
            elif fault == "huge":
                self._stream(b" " * 65536, 50 * 1024 * 1024 // 65536, pause=0.0)
            elif fault == "slow":
                self._stream(b" ", 600, pause=0.2)
            else:  # hang: accept the request and answer nothing until stopped.
                issuer._stopping.wait(30)

        def _stream(self, chunk: bytes, count: int, *, pause: float) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for _ in range(count):
                    if issuer._stopping.is_set():
                        return
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if pause:
                        time.sleep(pause)
            except OSError:
                return  # the client gave up, as it should.

        def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            self._raw(status, json.dumps(body).encode(), "application/json", headers)

        def _raw(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve_asgi(app: Any, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port; yield its base URL.

    Needs ``uvicorn`` (in the ``test`` extra). The server stops when the block ends.

    Args:
        app: the ASGI app.
        timeout: seconds to wait for the server to start.
    """
    import uvicorn

    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only for that proto.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
