"""The one small HTTP layer: bounded requests through httpx, sync and async.

Callers describe their exchange as a *plan*: a generator that yields :class:`Request` values
and receives :class:`Response` values, then returns its result. :func:`run` drives a plan with
``httpx.Client`` and :func:`run_async` with ``httpx.AsyncClient``; the plan itself, where all
the logic lives, is written once. How authgate talks to identity providers (timeouts, body
caps, transports) is one public settings object, :class:`Upstream`.

httpx is imported on first use, not with authgate: an app that verifies with static keys
never loads it.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from ._json import loads_strict
from .errors import ConfigurationError

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = [
    "Clients",
    "HTTPSettings",
    "Plan",
    "Request",
    "Response",
    "Upstream",
    "UpstreamError",
    "allowed_http",
    "cause_of",
    "check_url",
    "upstream_of",
]

T = TypeVar("T")


class UpstreamError(Exception):
    """An upstream exchange failed: unreachable, too slow, too large, or an unusable answer.

    Args:
        message: what went wrong, without any credential.
        status: the upstream HTTP status, when there was one.
        retry_after: the upstream's ``Retry-After`` in seconds, when given.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.detail = ""
        """The upstream's own error text, for logs (never for clients)."""


class Request(NamedTuple):
    """One HTTP request of a plan."""

    method: str
    url: str
    headers: Mapping[str, str] = MappingProxyType({})
    json: Any = None
    form: Mapping[str, str] | None = None


class Response(NamedTuple):
    """A complete, size-bounded HTTP response."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as strict JSON; raise :class:`UpstreamError` when it is not."""
        try:
            return loads_strict(self.body)
        except ValueError as exc:
            raise UpstreamError("the upstream answered with a body that is not JSON") from exc


Plan = Generator[Request, Response, T]


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """How authgate talks to identity providers: one object, passed as ``upstream=`` to every
    key source and remote-capable provider.

    Args:
        timeout: seconds for one whole exchange (connect, send, the whole body); ``None``: the
            component's own default (5 s for key fetches, :class:`RemotePolicy`'s 3 s for
            verification calls).
        max_body: the largest response body accepted, in bytes; ``None``: the component's
            default (1 MiB).
        verify: which servers to trust: ``True`` (the default CA bundle), the path of a CA
            bundle (PEM), or an ``ssl.SSLContext`` (e.g. for a private CA).
        cert: a client certificate for mutual TLS with the identity provider: the path of a
            PEM holding certificate and key, or a ``(certificate, key)`` pair of paths.
        trust_env: use the environment (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``...);
            ignored by default, so an inherited variable cannot redirect key fetches.
        allow_http: non-loopback host names that may be reached over plain ``http`` (e.g.
            ``("keycloak",)`` in a docker-compose network); logged as a warning when set.
        transport: an ``httpx.BaseTransport`` for sync calls (tests inject
            ``httpx.MockTransport``).
        async_transport: an ``httpx.AsyncBaseTransport`` for async calls.
    """

    timeout: float | None = None
    max_body: int | None = None
    verify: ssl.SSLContext | str | bool = field(default=True, repr=False)
    cert: str | tuple[str, str] | None = field(default=None, repr=False)
    trust_env: bool = False
    allow_http: tuple[str, ...] = ()
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    async_transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    _context: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not self.timeout > 0
        ):
            raise ConfigurationError("Upstream.timeout must be a number of seconds > 0")
        if self.max_body is not None and (
            isinstance(self.max_body, bool)
            or not isinstance(self.max_body, int)
            or self.max_body <= 0
        ):
            raise ConfigurationError("Upstream.max_body must be a positive number of bytes")
        if not isinstance(self.trust_env, bool):
            raise ConfigurationError("Upstream.trust_env must be True or False")
        hosts = self.allow_http
        if isinstance(hosts, str) or not all(isinstance(h, str) and h for h in hosts):
            raise ConfigurationError("Upstream.allow_http must be a list of host names")
        object.__setattr__(self, "allow_http", tuple(h.lower() for h in hosts))
        if self.allow_http:
            from ._log import warning

            warning(
                "authgate.upstream",
                "plain http allowed to %s: tokens and keys cross the network unencrypted",
                ", ".join(self.allow_http),
            )
        object.__setattr__(self, "_context", _tls_context(self.verify, self.cert))

    def settings(self, *, timeout: float, max_body: int) -> HTTPSettings:
        """The limits of one component's exchanges: these settings over its defaults.

        Args:
            timeout: the component's default timeout.
            max_body: the component's default body cap.
        """
        return HTTPSettings(
            timeout=timeout if self.timeout is None else self.timeout,
            max_body=max_body if self.max_body is None else self.max_body,
            transport=self.transport,
            async_transport=self.async_transport,
            context=self._context,
            trust_env=self.trust_env,
        )


def _tls_context(
    verify: ssl.SSLContext | str | bool, cert: str | tuple[str, str] | None
) -> ssl.SSLContext | None:
    """The TLS context an Upstream asks for; ``None``: the shared default one."""
    import ssl

    if verify is True and cert is None:
        return None  # built once, on first use, shared by every default Upstream
    if verify is False:
        raise ConfigurationError(
            "Upstream.verify=False is refused: pass a CA bundle or an ssl.SSLContext"
        )
    try:
        if isinstance(verify, ssl.SSLContext):
            context = verify
        elif isinstance(verify, str):
            context = ssl.create_default_context(cafile=verify)
        elif verify is True:
            import httpx

            context = httpx.create_ssl_context()
        else:
            raise ConfigurationError(
                "Upstream.verify must be True, a CA file path or an SSLContext"
            )
        if cert is not None:
            certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"Upstream TLS settings cannot be loaded: {exc}") from None
    return context


def allowed_http(upstream: Upstream | None) -> tuple[str, ...]:
    """The plain-http hosts ``upstream`` allows (none without one).

    Args:
        upstream: a constructor's ``upstream=`` argument.
    """
    return upstream.allow_http if isinstance(upstream, Upstream) else ()


def upstream_of(upstream: Upstream | None) -> Upstream:
    """The :class:`Upstream` a constructor was given, or the default one.

    Args:
        upstream: the ``upstream=`` argument.
    """
    if upstream is not None and not isinstance(upstream, Upstream):
        raise ConfigurationError("upstream must be an authgate.Upstream")
    return upstream or _DEFAULT_UPSTREAM


_DEFAULT_UPSTREAM = Upstream()


class HTTPSettings(NamedTuple):
    """Limits of every upstream exchange (built by :meth:`Upstream.settings`, validated there).

    Args:
        timeout: seconds for the whole exchange (connect, send, and read of the whole body).
        max_body: response bodies larger than this many bytes are refused.
        transport: an httpx transport for the sync client (tests inject one).
        async_transport: an httpx transport for the async client.
    """

    timeout: float = 5.0
    max_body: int = 1 << 20
    transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    context: ssl.SSLContext | None = None
    trust_env: bool = False


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def check_url(url: str, what: str, allow_http: tuple[str, ...] = ()) -> str:
    """Accept ``https`` URLs, and ``http`` only for loopback hosts or those in ``allow_http``.

    Args:
        url: the URL to check.
        what: what the URL is for, named in the error.
        allow_http: host names that may be reached over plain http (``Upstream.allow_http``).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{what} must be a URL string")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (parsing it is the check: a port out of range raises)
    except ValueError:
        raise ConfigurationError(f"{what} is not a valid URL") from None
    if not host:
        raise ConfigurationError(f"{what} has no host: {url!r}")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and (_is_loopback(host) or host in allow_http):
        return url
    raise ConfigurationError(
        f"{what} must use https (http only on loopback, or hosts in Upstream.allow_http): {url!r}"
    )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    import ipaddress  # configuration time only

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_MAX_CONNECTIONS = 20
"""The most connections one component's client opens to its upstream at once."""

_DEFAULT_HEADERS = {"accept-encoding": "identity", "user-agent": "authgate"}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context loads the CA bundle: ~90 ms. Build it once, share it (read-only).
    import httpx

    return httpx.create_ssl_context()


def _client_options(settings: HTTPSettings) -> dict[str, Any]:
    import httpx

    return {
        "verify": settings.context or _ssl_context(),
        "timeout": httpx.Timeout(settings.timeout),
        "follow_redirects": False,
        "headers": _DEFAULT_HEADERS,
        "trust_env": settings.trust_env,
        # a bounded pool: concurrent misses beyond it wait (within the timeout) for a connection
        "limits": httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=10),
    }


class _Body:
    """Collects a response body within the size cap and the deadline."""

    __slots__ = ("chunks", "deadline", "limit", "size")

    def __init__(self, response: httpx.Response, settings: HTTPSettings) -> None:
        self.limit = settings.max_body
        self.deadline = time.monotonic() + settings.timeout
        self.size = 0
        self.chunks: list[bytes] = []
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            # We ask for identity; an encoded body could inflate past any cap (a few hundred
            # bytes of gzip, gzip can hold gigabytes). Refused unread.
            raise UpstreamError(f"the upstream sent an encoded body ({encoding[:40]})")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise UpstreamError(f"the upstream body exceeds {self.limit} bytes")
        if 300 <= response.status_code < 400:
            raise UpstreamError(
                "the upstream answered with a redirect; redirects are not followed",
                status=response.status_code,
            )

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise UpstreamError(f"the upstream body exceeds {self.limit} bytes")
        if time.monotonic() > self.deadline:
            raise UpstreamError("the upstream was too slow to answer")
        self.chunks.append(chunk)

    def response(self, response: httpx.Response) -> Response:
        return Response(response.status_code, response.headers, b"".join(self.chunks))


def _send(client: httpx.Client, request: Request, settings: HTTPSettings) -> Response:
    import httpx

    _deadline.at = time.monotonic() + settings.timeout
    try:
        outgoing = client.build_request(
            request.method,
            request.url,
            headers=request.headers,
            json=request.json,
            data=request.form,
        )
        response = client.send(outgoing, stream=True)
        try:
            body = _Body(response, settings)
            if response.is_stream_consumed:  # a transport that handed the body over whole
                body.add(response.content)
            else:
                for chunk in response.iter_raw():  # raw: never inflated
                    body.add(chunk)
            return body.response(response)
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise UpstreamError("the upstream was too slow to answer") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise UpstreamError(f"the upstream is unreachable: {cause_of(exc)}") from exc
    finally:
        _deadline.at = None


def cause_of(exc: BaseException) -> str:
    """What an operator needs to know of a failed exchange, from its exception chain: a
    certificate error (with OpenSSL's reason), a DNS failure, a refused connection, a
    timeout. Never shown to clients.

    Args:
        exc: the exception httpx raised.
    """
    import ssl

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({link.verify_message})"
        if isinstance(link, ssl.SSLError):
            return f"TLS failed ({link.reason or type(link).__name__})"
        if isinstance(link, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(link, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(link, ConnectionResetError):
            return "the connection was reset"
    name = type(exc).__name__
    if "Timeout" in name:
        return f"timed out ({name})"
    return name


class _Deadline(threading.local):
    """The monotonic deadline of the sync exchange running in this thread (``None``: none)."""

    at: float | None = None


_deadline = _Deadline()


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left of this thread's exchange; ``error`` once none is.

    httpx's sync timeouts bound each read, so a server sending a header line a second would
    never trip them; every read and write of a pooled connection goes through here instead.
    """
    at = _deadline.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the exchange's total deadline passed")
    return left if timeout is None else min(timeout, left)


def _deadline_backend(inner: Any) -> Any:
    """``inner`` (an httpcore network backend) with every stream bound by :data:`_deadline`."""
    import httpcore

    class Stream(httpcore.NetworkStream):
        __slots__ = ("_inner",)

        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._inner.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self,
            ssl_context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.NetworkStream:
            bound = _remaining(timeout, httpcore.ConnectTimeout)
            return Stream(self._inner.start_tls(ssl_context, server_hostname, bound))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.NetworkStream:
            bound = _remaining(timeout, httpcore.ConnectTimeout)
            return Stream(inner.connect_tcp(host, port, bound, local_address, socket_options))

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.NetworkStream:
            bound = _remaining(timeout, httpcore.ConnectTimeout)
            return Stream(inner.connect_unix_socket(path, bound, socket_options))

        def sleep(self, seconds: float) -> None:
            inner.sleep(seconds)

    return Backend()


def _bind_deadlines(client: httpx.Client) -> bool:
    """Put :func:`_deadline_backend` under every connection pool of ``client``.

    httpx builds its pools (the direct one and one per proxy) without a way to name their
    network backend, so it is set on each pool it built. Returns whether every pool was
    reached; an injected transport (tests) has none and needs none.
    """
    import httpcore
    import httpx

    reached = True
    for transport in (client._transport, *client._mounts.values()):
        if not isinstance(transport, httpx.HTTPTransport):
            continue
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
            pool._network_backend = _deadline_backend(pool._network_backend)
        else:  # pragma: no cover - an httpx whose internals moved: reads stay bounded one by one
            reached = False
    return reached


async def _send_async(
    client: httpx.AsyncClient, request: Request, settings: HTTPSettings
) -> Response:
    import asyncio

    import httpx

    async def exchange() -> Response:
        async with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            json=request.json,
            data=request.form,
        ) as response:
            body = _Body(response, settings)
            if response.is_stream_consumed:  # a transport that handed the body over whole
                body.add(response.content)
            else:
                async for chunk in response.aiter_raw():  # raw: never inflated
                    body.add(chunk)
            return body.response(response)

    try:
        if sys.version_info >= (3, 11):  # a deadline on this task: no task of its own
            async with asyncio.timeout(settings.timeout):
                return await exchange()
        return await asyncio.wait_for(exchange(), settings.timeout)
    except asyncio.TimeoutError as exc:
        raise UpstreamError("the upstream was too slow to answer") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise UpstreamError(f"the upstream is unreachable: {cause_of(exc)}") from exc


class Clients:
    """The pooled HTTP clients of one component (a key source, a remote verifier): one sync
    client, and one async client per event loop (an ``httpx.AsyncClient`` belongs to the
    loop it was first used on). Connections are kept alive and reused between calls.

    Each client is made on first use and closed by :meth:`close` / :meth:`aclose` (which
    ``Authenticator.close()`` and the ASGI lifespan call); after that, the next call opens a
    new one. Without them nothing leaks either: an async client is closed when its event
    loop shuts down (``asyncio.run``, uvicorn, anyio), and every client when its component is
    garbage-collected or the interpreter exits.

    Args:
        settings: the limits of every exchange.
    """

    def __init__(self, settings: HTTPSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._sync_box: list[httpx.Client | None] = [None]  # a box the finalizer shares
        self._loops: weakref.WeakKeyDictionary[Any, _LoopClient] = weakref.WeakKeyDictionary()
        weakref.finalize(self, _close_all, self._lock, self._sync_box, self._loops)

    # -- sync ---------------------------------------------------------------------------------

    def run(self, plan: Plan[T]) -> T:
        """Drive ``plan`` to its result on the pooled sync client.

        Args:
            plan: the exchange, as a generator of requests.
        """
        client = self._sync_box[0] or self._open_sync()
        try:
            request = next(plan)
            while True:
                request = plan.send(_send(client, request, self.settings))
        except StopIteration as done:
            result: T = done.value
            return result

    def _open_sync(self) -> httpx.Client:
        import httpx

        with self._lock:
            client = self._sync_box[0]
            if client is None:
                client = httpx.Client(
                    transport=self.settings.transport, **_client_options(self.settings)
                )
                _bind_deadlines(client)
                self._sync_box[0] = client
            return client

    # -- async --------------------------------------------------------------------------------

    async def run_async(self, plan: Plan[T]) -> T:
        """Drive ``plan`` to its result on this event loop's pooled async client.

        Args:
            plan: the exchange, as a generator of requests.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        held = self._loops.get(loop)
        client = held.client if held is not None else await self._open_async(loop)
        try:
            request = next(plan)
            while True:
                request = plan.send(await _send_async(client, request, self.settings))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _open_async(self, loop: Any) -> httpx.AsyncClient:
        import httpx

        def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=self.settings.async_transport, **_client_options(self.settings)
            )

        client: httpx.AsyncClient = await loop_client(self._loops, make)
        return client

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client, and the async clients of loops that can still run them."""
        _close_all(self._lock, self._sync_box, self._loops)

    async def aclose(self) -> None:
        """Close this loop's async client (awaiting it), then everything :meth:`close` does."""
        import asyncio

        held = self._loops.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.keeper.aclose()
        self.close()


class _LoopClient:
    """One loop's async client and its keeper: an async generator whose ``finally`` closes the
    client. Started on the loop, it is in the loop's set of async generators, which
    ``loop.shutdown_asyncgens()`` finalizes when the loop ends (as ``asyncio.run`` does).
    Any client with an ``aclose()`` (httpx's, redis-py's) is kept this way."""

    __slots__ = ("__weakref__", "client", "keeper")

    def __init__(
        self,
        client: Any,
        loops: weakref.WeakKeyDictionary[Any, _LoopClient],
        loop: Any,
    ) -> None:
        self.client = client
        self.keeper = _keep(client, loops, weakref.ref(loop))


async def loop_client(
    loops: weakref.WeakKeyDictionary[Any, _LoopClient], make: Callable[[], Any]
) -> Any:
    """The running loop's client in ``loops``, made by ``make`` on first use and closed when
    the loop shuts down (or by :func:`close_loop_clients`).

    Args:
        loops: the clients by loop.
        make: builds a client (with an ``aclose()`` coroutine method).
    """
    import asyncio

    loop = asyncio.get_running_loop()
    held = loops.get(loop)
    if held is None:  # one loop runs one task at a time: no await between get and set
        held = loops[loop] = _LoopClient(make(), loops, loop)
        await held.keeper.__anext__()
    return held.client


async def _keep(
    client: Any,
    loops: weakref.WeakKeyDictionary[Any, _LoopClient],
    loop: weakref.ref[Any],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        alive = loop()
        if alive is not None:
            loops.pop(alive, None)
        await client.aclose()


_closing: set[Any] = set()  # close tasks in flight (the loop holds tasks only weakly)


def _close_all(
    lock: threading.Lock,
    sync: list[httpx.Client | None],
    loops: weakref.WeakKeyDictionary[Any, _LoopClient],
) -> None:
    """Close a :class:`Clients`' clients (also its finalizer: it must not hold the object)."""

    with lock:
        client, sync[0] = sync[0], None
    if client is not None:
        client.close()
    close_loop_clients(loops)


def close_loop_clients(loops: weakref.WeakKeyDictionary[Any, _LoopClient]) -> None:
    """Close the clients of every loop that can still run its close (see :func:`loop_client`).

    Args:
        loops: the clients by loop.
    """
    import asyncio

    for loop, held in list(loops.items()):
        if loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loops.pop(loop, None)
        if running is not None and loop is running:  # sync close from async code: soon
            task = running.create_task(held.keeper.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        elif loop.is_running():  # another thread's loop: ask it
            asyncio.run_coroutine_threadsafe(held.keeper.aclose(), loop)
        else:  # a stopped loop: run the close on it
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(held.keeper.aclose())
