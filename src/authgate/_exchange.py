"""One bounded exchange: a *plan* of requests and the sending of each, sync and async.

Callers describe their exchange as a *plan*: a generator that yields :class:`Request` values
and receives :class:`Response` values, then returns its result; the plan, where all the logic
lives, is written once, and :class:`authgate._clients.Clients` drives it with ``httpx.Client``
or ``httpx.AsyncClient``. Each exchange is bounded: a body cap, no redirects, no inflation, and
one deadline for the whole exchange (a server dripping a header line a second does not hold a
sync worker past it).

httpx is imported on first use, not with authgate: an app that verifies with static keys
never loads it.
"""

from __future__ import annotations

import functools
import socket
import sys
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ._json import loads_strict
from ._upstream import HTTPSettings

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["Plan", "Request", "Response", "UpstreamError", "cause_of"]

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


def sync_transport(settings: HTTPSettings) -> httpx.BaseTransport:
    """The sync client's transport: httpcore's connection pool (its public API) over a network
    backend whose every stream is bound by the exchange's deadline (:func:`_deadline_backend`),
    behind httpx's public transport interface. An injected transport (tests) is used as given.

    With ``Upstream(trust_env=True)``, httpx routes proxied hosts through its own transports:
    those exchanges keep httpx's per-read timeouts, without the total deadline.

    Args:
        settings: the component's limits and TLS context.
    """
    import httpcore
    import httpx

    if settings.transport is not None:
        return settings.transport
    pool = httpcore.ConnectionPool(
        ssl_context=settings.context or _ssl_context(),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=10,
        network_backend=_deadline_backend(httpcore.SyncBackend()),
    )

    def mapped(exc: Exception, request: httpx.Request) -> httpx.TransportError:
        # httpcore's errors and httpx's share their names (ReadTimeout, ConnectError, ...)
        kind = getattr(httpx, type(exc).__name__, httpx.TransportError)
        if not (isinstance(kind, type) and issubclass(kind, httpx.TransportError)):
            kind = httpx.TransportError
        return kind(str(exc), request=request)

    class Body(httpx.SyncByteStream):
        def __init__(self, stream: Any, request: httpx.Request) -> None:
            self._stream, self._request = stream, request

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self._stream
            except httpcore.TimeoutException as exc:  # includes the total deadline's
                raise mapped(exc, self._request) from exc
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                raise mapped(exc, self._request) from exc

        def close(self) -> None:
            self._stream.close()

    class PoolTransport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            url = request.url
            try:
                answer = pool.handle_request(
                    httpcore.Request(
                        method=request.method,
                        url=httpcore.URL(
                            scheme=url.raw_scheme,
                            host=url.raw_host,
                            port=url.port,
                            target=url.raw_path,
                        ),
                        headers=request.headers.raw,
                        content=request.stream,
                        extensions=request.extensions,
                    )
                )
            except (httpcore.TimeoutException, httpcore.NetworkError) as exc:
                raise mapped(exc, request) from exc
            except (httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
                raise mapped(exc, request) from exc
            return httpx.Response(
                status_code=answer.status,
                headers=answer.headers,
                stream=Body(answer.stream, request),
                extensions=answer.extensions,
            )

        def close(self) -> None:
            pool.close()

    return PoolTransport()


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
    except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
        raise UpstreamError("the upstream was too slow to answer") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise UpstreamError(f"the upstream is unreachable: {cause_of(exc)}") from exc
