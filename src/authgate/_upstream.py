"""How authgate talks to identity providers: :class:`Upstream` (timeouts, body caps, TLS,
transports, plain-http exceptions), the limits one component derives from it, and the URL
rules every remote location follows (https, or http on loopback)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigurationError

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = [
    "MAX_BODY",
    "HTTPSettings",
    "Upstream",
    "allowed_http",
    "check_url",
    "upstream_of",
]

MAX_BODY: Final = 1 << 20
"""The largest response body accepted from an identity provider unless ``Upstream.max_body``
says otherwise (1 MiB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """How authgate talks to identity providers: one object, passed as ``upstream=`` to every
    key source and remote-capable provider.

    Args:
        timeout: seconds for one whole exchange (connect, send, the whole body); ``None``: the
            component's own default (5 s for key fetches, 3 s for verification calls). The
            one place a timeout is set: the fleet's locks on a call follow it too.
        max_body: the largest response body accepted, in bytes; ``None``: 1 MiB.
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
        clock: returns the current time in seconds since the epoch: what the component judges
            expiry, freshness and cooldowns by (tests inject a hand-moved one).
    """

    timeout: float | None = None
    max_body: int | None = None
    verify: ssl.SSLContext | str | bool = field(default=True, repr=False)
    cert: str | tuple[str, str] | None = field(default=None, repr=False)
    trust_env: bool = False
    allow_http: tuple[str, ...] = ()
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    async_transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
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
        if not callable(self.clock):
            raise ConfigurationError("Upstream.clock must return seconds since the epoch")
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
    if parts.username is not None or parts.password is not None:
        # credentials in a URL end up in logs and in every request line: never accepted
        raise ConfigurationError(
            f"{what} carries a user name or password: put credentials in the provider's "
            "settings, never in the URL"
        )
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
