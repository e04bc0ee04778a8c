"""Real HTTP servers on 127.0.0.1 for tests: a base with faults, a JWKS issuer, uvicorn.

:class:`FakeServer` runs in a background thread, counts requests per path, and can misbehave
on demand (:data:`Fault`). Subclasses only answer requests.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, NamedTuple

from .tokens import SigningKey, TokenFactory

__all__ = ["Answer", "FakeServer", "Fault", "LocalIssuer", "json_answer", "serve_asgi"]

Fault = Literal[
    "down",
    "error",
    "ratelimit",
    "garbage",
    "huge",
    "slow",
    "redirect",
    "hang",
    "bomb",
    "slow-headers",
    "reset",
    "redirect-loop",
]
"""How a :class:`FakeServer` misbehaves: ``bomb`` sends 256 MiB of zeros gzipped twice
(``Content-Encoding: gzip, gzip``, a few hundred bytes on the wire); ``slow-headers`` sends
one header line a second, for a minute, before any body; ``reset`` announces a body, sends
half of it and resets the connection; ``redirect-loop`` redirects to the very same URL."""


@functools.cache
def _bomb() -> bytes:
    inner = gzip.compress(bytes(256 * 1024 * 1024), compresslevel=9, mtime=0)
    return gzip.compress(inner, compresslevel=9, mtime=0)


"""How a server misbehaves: ``down`` (503), ``error`` (500), ``ratelimit`` (429 with
``Retry-After``), ``garbage`` (200, not JSON), ``huge`` (50 MB), ``slow`` (a byte every
0.2 s), ``redirect`` (302), ``hang`` (no answer until stopped)."""


class Answer(NamedTuple):
    """A response: status, body, extra headers."""

    status: int
    body: bytes
    headers: Mapping[str, str] = {}


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """A JSON response.

    Args:
        status: the HTTP status.
        body: what to serialize.
        headers: extra headers.
    """
    return Answer(
        status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}
    )


def _error(status: int, phrase: str, message: str) -> Answer:
    return json_answer(status, {"statusCode": status, "error": phrase, "message": message})


class FakeServer:
    """An HTTP server on a free 127.0.0.1 port, in a daemon thread; use as a context manager."""

    faulty_paths: frozenset[str] = frozenset()
    """Paths where :attr:`fault` applies (empty: every path)."""

    def __init__(self) -> None:
        self.tls: ssl.SSLContext | None = None
        """A server-side TLS context: set it before :meth:`start` to serve https."""
        self.fault: Fault | None = None
        self.retry_after = "2"
        """The ``Retry-After`` sent with the ``ratelimit`` fault."""
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.accepted = 0
        """How many connections the server has accepted (pooled clients reuse theirs)."""

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        """Answer one request (subclasses override).

        Args:
            method: the HTTP method.
            path: the path, without query string.
            headers: the request headers.
            body: the request body.
        """
        return _error(404, "Not Found", "no route")

    def started(self) -> None:
        """Called once the port is bound (subclasses may use :attr:`url`)."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.started()
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
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:  # kept-alive clients: end them, as a stopped server does
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server = self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    @property
    def open_connections(self) -> int:
        """How many client connections are open now (a closed client's are not)."""
        with self._lock:
            return len(self._connections)

    def calls(self, path: str) -> int:
        """How many requests ``path`` received.

        Args:
            path: the request path.
        """
        with self._lock:
            return self.requests[path]

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # as real servers: concurrent connects are queued, not reset


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as real servers: no 40 ms delayed-ACK stall on reuse

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

        def setup(self) -> None:
            super().setup()
            with fake._lock:
                fake._connections.add(self.connection)
                fake.accepted += 1

        def finish(self) -> None:
            with fake._lock:
                fake._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            fake._count(path)
            fault = fake.fault
            if fault is not None and (not fake.faulty_paths or path in fake.faulty_paths):
                self._misbehave(fault)
                return
            self._send(fake.answer(self.command, path, self.headers, body))

        def _misbehave(self, fault: Fault) -> None:
            if fault == "down":
                self._send(_error(503, "Service Unavailable", "down for maintenance"))
            elif fault == "error":
                self._send(_error(500, "Internal Server Error", "unexpected"))
            elif fault == "ratelimit":
                answer = _error(429, "Too Many Requests", "slow down")
                self._send(
                    answer._replace(headers={**answer.headers, "retry-after": fake.retry_after})
                )
            elif fault == "garbage":
                self._send(Answer(200, b"<html>not json</html>", {"content-type": "text/html"}))
            elif fault == "redirect":
                self._send(Answer(302, b"", {"location": "http://127.0.0.1:9/elsewhere"}))
            elif fault == "huge":
                self._stream(b" " * 65536, 50 * 1024 * 1024 // 65536, pause=0.0)
            elif fault == "slow":
                self._stream(b" ", 600, pause=0.2)
            elif fault == "reset":
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "1000")
                self.end_headers()
                self.wfile.write(b'{"keys": [' + b" " * 400)
                self.wfile.flush()
                # end the connection mid-body (SO_LINGER 0: the final close is a TCP reset)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif fault == "redirect-loop":
                self._send(Answer(307, b"", {"location": self.path}))
            elif fault == "bomb":
                body = _bomb()
                self._send(Answer(200, body, {"content-encoding": "gzip, gzip"}))
            elif fault == "slow-headers":
                self.send_response(200)
                try:
                    for i in range(60):
                        if fake._stopping.wait(1.0):
                            return
                        self.send_header(f"x-slow-{i}", "1")
                        self.flush_headers()
                except OSError:
                    return  # the client gave up, as it should.
            else:  # hang: accept the request and answer nothing until stopped.
                fake._stopping.wait(30)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            headers = {"content-type": "application/json", **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def _stream(self, chunk: bytes, count: int, *, pause: float) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for _ in range(count):
                    if fake._stopping.is_set():
                        return
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if pause:
                        time.sleep(pause)
            except OSError:
                return  # the client gave up, as it should.

    return Handler


class LocalIssuer(FakeServer):
    """A JWKS and OIDC discovery server: ``/.well-known/jwks.json`` and ``openid-configuration``.

    Its URL is the issuer (``iss``) of the tokens its :attr:`factory` mints. :attr:`fault`
    applies to JWKS requests only.

    Args:
        alg: the algorithm of its signing key.
        audience: the ``aud`` of minted tokens, when set.
        cache_control: the ``Cache-Control`` header of JWKS answers.
        include_retired: keep publishing keys retired by :meth:`rotate`.
    """

    JWKS_PATH = "/.well-known/jwks.json"
    DISCOVERY_PATH = "/.well-known/openid-configuration"
    faulty_paths = frozenset({JWKS_PATH})

    def __init__(
        self,
        alg: str = "RS256",
        *,
        audience: str | list[str] | None = None,
        cache_control: str = "max-age=600",
        include_retired: bool = True,
    ) -> None:
        super().__init__()
        self.factory = TokenFactory(alg, audience=audience)
        self.cache_control = cache_control
        self.include_retired = include_retired
        self.extra_keys: list[dict[str, Any]] = []
        """Raw JWKs published after the real ones (e.g. broken keys, for negative tests)."""

    def started(self) -> None:
        self.factory.issuer = self.url

    @property
    def jwks_url(self) -> str:
        """The JWKS URL."""
        return self.url + self.JWKS_PATH

    @property
    def jwks_requests(self) -> int:
        """How many JWKS requests were received so far."""
        return self.calls(self.JWKS_PATH)

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

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        if path == self.DISCOVERY_PATH:
            return json_answer(200, {"issuer": self.url, "jwks_uri": self.jwks_url})
        if path == self.JWKS_PATH:
            return json_answer(200, self.jwks(), {"cache-control": self.cache_control})
        return super().answer(method, path, headers, body)


class FakeTenants(FakeServer):
    """A multi-tenant identity provider: each tenant its own issuer (``{url}/{tenant}/v2.0``,
    as Entra ID), with its own signing key, discovery document and JWKS.

    Args:
        tenants: the tenants it serves.
        alg: the algorithm of every tenant's key.
    """

    def __init__(self, tenants: Iterable[str], *, alg: str = "RS256") -> None:
        super().__init__()
        self.factories = {tenant: TokenFactory(alg) for tenant in tenants}

    def started(self) -> None:
        for tenant, factory in self.factories.items():
            factory.issuer = self.issuer(tenant)

    @property
    def issuer_template(self) -> str:
        """The issuer template (``{url}/{tenant}/v2.0``)."""
        return self.url + "/{tenant}/v2.0"

    def issuer(self, tenant: str) -> str:
        """One tenant's issuer.

        Args:
            tenant: the tenant.
        """
        return f"{self.url}/{tenant}/v2.0"

    def mint(self, tenant: str, subject: str = "user-1", **claims: Any) -> str:
        """A token of ``tenant`` (its issuer, its key).

        Args:
            tenant: the tenant.
            subject: the ``sub`` claim.
            claims: claims to add or override.
        """
        return self.factories[tenant].mint(subject, **claims)

    def requests_for(self, tenant: str) -> int:
        """How many discovery and JWKS requests ``tenant`` received.

        Args:
            tenant: the tenant.
        """
        base = f"/{tenant}/v2.0"
        return self.calls(base + LocalIssuer.DISCOVERY_PATH) + self.calls(base + "/keys")

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Answer:
        parts = path.split("/", 3)  # "", tenant, "v2.0", rest
        if len(parts) == 4 and parts[2] == "v2.0" and parts[1] in self.factories:
            tenant, rest = parts[1], "/" + parts[3]
            if rest == LocalIssuer.DISCOVERY_PATH:
                issuer = self.issuer(tenant)
                return json_answer(200, {"issuer": issuer, "jwks_uri": issuer + "/keys"})
            if rest == "/keys":
                return json_answer(200, self.factories[tenant].jwks())
        return super().answer(method, path, headers, body)


_XDIST_PORTS: Final = (20000, 32000)  # below Linux's ephemeral range: no client socket's
_given: list[int] = []  # the ports this process handed out lately (a worker's own slice)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts as its own process).

    Under pytest-xdist each worker takes ports from its own slice of 20000-31999: two workers
    never pick the same port (one's server could otherwise answer the other's readiness
    check, then vanish), and a worker does not hand out one of its last 64 ports again.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if count <= 1 or worker[:2] != "gw" or not worker[2:].isdigit():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    low, high = _XDIST_PORTS
    width = (high - low) // count
    first = low + (int(worker[2:]) % count) * width
    for _ in range(1000):
        port = random.randrange(first, first + width)  # noqa: S311 (not a secret)
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given[:] = [*_given[-63:], port]
        return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_for_port(port: int, *, timeout: float = 20.0, process: Any = None) -> None:
    """Wait until something listens on ``127.0.0.1:port``; raise ``RuntimeError`` after
    ``timeout`` seconds, or as soon as ``process`` (a ``subprocess.Popen``) has exited.

    Args:
        port: the port.
        timeout: seconds to wait at most.
        process: the server's process, when the test started one.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


@contextmanager
def serve_asgi(app: Any, *, timeout: float = 10.0, lifespan: bool = False) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port; yield its base URL.

    Needs ``uvicorn`` (in the ``test`` extra). The server stops when the block ends.

    Args:
        app: the ASGI app.
        timeout: seconds to wait for the server to start.
        lifespan: run the ASGI lifespan protocol (startup and shutdown events).
    """
    import uvicorn

    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only for that proto.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on" if lifespan else "off", access_log=False
    )
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


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app with the standard library's ``wsgiref`` server (one thread) on a free
    127.0.0.1 port; yield its base URL. The server stops when the block ends.

    Args:
        app: the WSGI app.
    """
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
