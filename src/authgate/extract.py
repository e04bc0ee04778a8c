"""Find the credential in a request's headers: ``Authorization: Bearer``, ``Authorization:
DPoP`` with its ``DPoP`` proof header (RFC 9449), ``x-api-key``, a cookie.

Never from the query string. Ambiguity is the client's error (400 ``invalid_request``): several
``Authorization`` headers, an empty or multi-part Bearer value, a Bearer token and an API key
together. A non-Bearer ``Authorization`` scheme (e.g. ``Basic``) is not ours and counts as no
credential. A token from the opt-in cookie (:class:`TokenCookie`) is refused (403) on a
request another site's page may have sent (cross-site request forgery).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigurationError, CrossOrigin, InvalidDPoPProof, InvalidRequest, TokenTooLarge

__all__ = [
    "Credential",
    "Proof",
    "TokenCookie",
    "credential_from_asgi",
    "credential_from_environ",
    "credential_from_headers",
    "environ_key",
    "extract_credential",
    "is_jwt",
    "refuse_oversized",
    "with_request",
]

MAX_TOKEN_BYTES: Final = 16384
"""The default size cap of a credential, checked before any routing or parsing."""

# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# An auth-scheme is an RFC 9110 token; what follows it decides whether the header is well-formed.
_SCHEME = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(.*)", re.DOTALL)
_API_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # visible ASCII, no spaces, no commas
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 6265 cookie-name (a token)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_ORIGIN: Final = frozenset({"same-origin", "none"})  # Sec-Fetch-Site: ours, or the user's


@dataclass(frozen=True, slots=True)
class TokenCookie:
    """A cookie that may carry a Bearer token (``Authenticator(cookie=TokenCookie("token"))``).

    A browser sends cookies with requests other sites' pages start (a form posted to this
    app, a ``fetch``, a WebSocket opened from their page), so a token read from the cookie
    is accepted on a request that may change something (any method but GET, HEAD and
    OPTIONS; every WebSocket handshake) only when the browser says the request comes from
    this app's own origin (``Sec-Fetch-Site: same-origin``, or, from a browser without
    Fetch Metadata, an ``Origin`` whose host is the ``Host``), or from one of
    ``trusted_origins``; else 403 (as Go's ``CrossOriginProtection`` decides). A request
    with neither header comes from no browser, and passes. Tokens in ``Authorization`` are
    not concerned: a browser never adds that header on its own.

    Args:
        name: the cookie's name.
        trusted_origins: other origins (``https://app.example.com``) whose pages may send
            such requests with the cookie too (a front end on another host).
    """

    name: str
    trusted_origins: Collection[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _COOKIE_NAME.fullmatch(self.name) is None:
            raise ConfigurationError("TokenCookie.name must be a cookie name (an RFC 6265 token)")
        if isinstance(self.trusted_origins, str):
            raise ConfigurationError(
                "TokenCookie.trusted_origins must be a list of origins, not one string"
            )
        object.__setattr__(
            self, "trusted_origins", frozenset(map(_trusted_origin, self.trusted_origins))
        )

    def refuse_cross_origin(
        self, method: str, fetch_site: str | None, origin: str | None, host: str | None
    ) -> None:
        """Raise :class:`~authgate.errors.CrossOrigin` when a browser may have sent this
        request from another site's page.

        Args:
            method: the request's method (``""`` when unknown, e.g. a WebSocket handshake:
                checked as one that changes something).
            fetch_site: the ``Sec-Fetch-Site`` header, if any.
            origin: the ``Origin`` header, if any.
            host: the ``Host`` header, if any.
        """
        if method in _SAFE_METHODS:
            return
        if fetch_site is not None:
            if fetch_site.lower() in _SAME_ORIGIN:
                return
        elif origin is None:
            return  # neither header: not a browser's request
        elif host and _host_of(origin) == host.lower():
            return
        if origin is not None and origin.lower() in self.trusted_origins:
            return
        raise CrossOrigin(
            f"a token from the {self.name} cookie is not accepted on a request from another "
            "site; send it in the Authorization header"
        ).with_context(origin=(origin or "")[:200], fetch_site=(fetch_site or "")[:50])


def _trusted_origin(origin: object) -> str:
    """An origin as browsers serialise it in ``Origin`` (lower case, no path), or refuse it."""
    try:
        parts = urlsplit(origin) if isinstance(origin, str) else None
        port = None if parts is None else parts.port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigurationError(
            f"TokenCookie.trusted_origins: {origin!r} is not an origin such as "
            "'https://app.example.com'"
        )
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{port}"  # browsers leave the default port out of Origin
    return f"{parts.scheme}://{host}"


def _host_of(origin: str) -> str | None:
    """The host (and port, if any) of an ``Origin`` value, lower case."""
    scheme, sep, rest = origin.partition("://")
    return rest.lower() if sep and scheme.lower() in ("http", "https") and rest else None


def refuse_oversized(value: str, limit: int) -> None:
    """Raise :class:`TokenTooLarge` when ``value`` is longer than ``limit``.

    Args:
        value: a credential value.
        limit: the most characters accepted.
    """
    if len(value) > limit:
        raise TokenTooLarge(f"the credential is longer than {limit} bytes")


def is_jwt(value: str) -> bool:
    """Whether ``value`` looks like a compact JWS (two dots); the verifier checks the rest.

    Args:
        value: a credential value.
    """
    return value.count(".") == 2


class Proof(NamedTuple):
    """A DPoP proof as a request carries it (RFC 9449), with what it must name; the shells
    fill in ``method`` and ``uri`` (see :mod:`authgate.dpop`).

    Attributes:
        jwt: the ``DPoP`` header's value (secret: never logged).
        method: the request's method.
        uri: the request's URI (scheme, host, path; no query or fragment).
    """

    jwt: str
    method: str = ""
    uri: str = ""

    def __repr__(self) -> str:
        return f"Proof(<{len(self.jwt)} chars>, method={self.method!r}, uri={self.uri!r})"


class Credential(NamedTuple):
    """A credential as found in the request; ``value`` is secret and never logged. A token
    sent under the ``DPoP`` scheme carries its ``proof``; with client certificates configured
    (:mod:`authgate.mtls`), ``certificate`` is the thumbprint of the request's. A token read
    from a provider's own header (``Provider.token_header``, e.g. AWS ALB's) names it in
    ``header``: only that provider verifies it. ``from_cookie`` says the token came from the
    opt-in cookie, which a browser sends by itself (CSRF checks still apply to it)."""

    kind: Literal["bearer", "api_key"]
    value: str
    proof: Proof | None = None
    certificate: str | None = None
    header: str | None = None
    from_cookie: bool = False

    @property
    def is_jwt(self) -> bool:
        """Whether the value has a JWT's shape (three dot-separated parts): routing only."""
        return is_jwt(self.value)

    def __repr__(self) -> str:
        bound = "" if self.proof is None else ", DPoP"
        return f"Credential(kind={self.kind!r}, value=<{len(self.value)} chars>{bound})"


def extract_credential(
    authorization: str | None,
    api_key: str | None,
    *,
    authorization_count: int = 1,
    api_key_count: int = 1,
    cookie_header: str | None = None,
    cookie_name: str | None = None,
    proofs: Sequence[str] = (),
    token_header: str | None = None,
    header_token: str | None = None,
    header_token_count: int = 1,
) -> Credential | None:
    """Decide which credential a request carries, or raise :class:`InvalidRequest`.

    Args:
        authorization: the ``Authorization`` header value, if any.
        api_key: the ``x-api-key`` header value, if any.
        authorization_count: how many ``Authorization`` headers there were.
        api_key_count: how many ``x-api-key`` headers there were.
        cookie_header: the ``Cookie`` header, consulted only when ``cookie_name`` is set.
        cookie_name: the cookie holding a bearer token (opt-in).
        proofs: the ``DPoP`` header values (read only under the ``DPoP`` scheme).
        token_header: a provider's own token header (``Provider.token_header``), if any.
        header_token: that header's value, if the request has one.
        header_token_count: how many of that header there were.
    """
    if authorization_count > 1:
        raise InvalidRequest("send one Authorization header, not several")
    if api_key_count > 1:
        raise InvalidRequest("send one x-api-key header, not several")
    bearer = None
    proof = None
    if authorization is not None:
        parsed = _SCHEME.match(authorization.strip(" "))
        scheme, rest = parsed.groups() if parsed is not None else ("", "")
        scheme = scheme.lower()
        if scheme in ("bearer", "dpop"):
            name = "Bearer" if scheme == "bearer" else "DPoP"
            if rest and rest[0] != " ":  # "Bearer<TAB>x", "Bearer,x": never read as no credential
                raise InvalidRequest(
                    f"the {name} scheme must be followed by one space and the token"
                )
            bearer = rest.lstrip(" ")
            if not bearer:
                raise InvalidRequest(f"the {name} credential is empty")
            if _B64TOKEN.fullmatch(bearer) is None:
                raise InvalidRequest(f"the {name} credential must be one token of RFC 6750 syntax")
            if scheme == "dpop":  # RFC 9449 §4.3: exactly one DPoP header
                if len(proofs) > 1:
                    raise InvalidRequest("send one DPoP proof header, not several")
                jwt = proofs[0].strip(" \t") if proofs else ""
                if not jwt:
                    raise InvalidDPoPProof("the DPoP scheme needs a DPoP proof header")
                proof = Proof(jwt)
    if header_token is not None and token_header is not None:
        if bearer is not None or api_key is not None:
            raise InvalidRequest(f"send either the {token_header} header or another credential")
        return _header_credential(token_header, header_token, header_token_count)
    if api_key is not None:
        api_key = api_key.strip(" \t")
        if not api_key:
            raise InvalidRequest("the x-api-key header is empty")
        if _API_KEY.fullmatch(api_key) is None:
            raise InvalidRequest(
                "the x-api-key value must be visible ASCII without spaces or commas"
            )
        if bearer is not None:
            raise InvalidRequest("send either a Bearer token or an x-api-key, not both")
        return Credential("api_key", api_key)
    if bearer is not None:
        return Credential("bearer", bearer, proof)
    if cookie_name is not None and cookie_header:
        value = _cookie(cookie_header, cookie_name)
        if value:
            return Credential("bearer", value, from_cookie=True)
    return None


_HEADER_TOKEN = re.compile(r"[A-Za-z0-9\-_.=]+")  # base64url segments, padded or not


def _header_credential(header: str, value: str, count: int) -> Credential:
    if count > 1:
        raise InvalidRequest(f"send one {header} header, not several")
    value = value.strip(" \t")
    if not value:
        raise InvalidRequest(f"the {header} header is empty")
    if _HEADER_TOKEN.fullmatch(value) is None:
        raise InvalidRequest(f"the {header} header must hold one token")
    return Credential("bearer", value, header=header)


def with_request(credential: Credential | None, method: str, uri: str) -> Credential | None:
    """``credential`` with the request's method and URI on its DPoP proof, if it has one.

    Args:
        credential: the extracted credential.
        method: the request's method.
        uri: the URI the request addressed (see :mod:`authgate.dpop`).
    """
    if credential is None:
        return None
    kind, value, proof, certificate, header, from_cookie = credential
    if proof is None:
        return credential
    return Credential(kind, value, Proof(proof.jwt, method, uri), certificate, header, from_cookie)


def _cookie(header: str, name: str) -> str | None:
    """The bearer token in cookie ``name``. Two different values for it (a cookie set again
    from a sibling domain or another path) are ambiguous: refused, as two Authorization
    headers are, never resolved by order."""
    found: str | None = None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip().strip('"')
            if found is not None and value != found:
                raise InvalidRequest(f"send one {name} cookie, not several")
            found = value
    return found if found and _B64TOKEN.fullmatch(found) else None


def credential_from_asgi(
    headers: Iterable[tuple[bytes, bytes]],
    cookie: TokenCookie | None = None,
    token_header: str | None = None,
    *,
    method: str = "",
) -> Credential | None:
    """The credential in raw ASGI headers (lower-case names, latin-1 values).

    Args:
        headers: ``scope["headers"]``.
        cookie: the opt-in token cookie.
        token_header: a provider's own token header (lower-case), if one is configured.
        method: the request's method, for the cookie's cross-site check (``""``, unknown or a
            WebSocket handshake: checked as a method that changes something).
    """
    authorization: str | None = None
    api_key: str | None = None
    cookies: list[object] = []
    cookie_header: str | None = None
    browser: dict[bytes, object] = {}
    proofs: list[str] = []
    n_auth = n_key = n_own = 0
    own_name = None if token_header is None else token_header.encode("latin-1")
    own: str | None = None
    # Read as the hit path reads them, so both agree on any header list.
    for name, value in headers:
        if name == b"authorization":
            authorization = _latin1(value)
            n_auth += 1
        elif name == b"x-api-key":
            api_key = _latin1(value)
            n_key += 1
        elif name == b"dpop":
            proofs.append(_latin1(value))
        elif name == own_name:
            own = _latin1(value)
            n_own += 1
        elif cookie is not None:
            if name == b"cookie":
                cookies.append(value)  # HTTP/2 may split one Cookie header into several
            elif name in _BROWSER:  # read only when the cookie is the credential
                # the same header twice with two values: neither is believed
                browser[name] = value if browser.setdefault(name, value) == value else b"\x00"
    if authorization is None and api_key is None and own is None:
        if not cookies:
            return None
        cookie_header = "; ".join(map(_latin1, cookies))  # read only when it is the credential
    credential = extract_credential(
        authorization,
        api_key,
        authorization_count=n_auth,
        api_key_count=n_key,
        cookie_header=cookie_header,
        cookie_name=None if cookie is None else cookie.name,
        proofs=proofs,
        token_header=token_header,
        header_token=own,
        header_token_count=n_own,
    )
    if cookie is not None and credential is not None and credential.from_cookie:
        site, origin, host = (
            None if name not in browser else _latin1(browser[name]) for name in _BROWSER_NAMES
        )
        cookie.refuse_cross_origin(method, site, origin, host)
    return credential


_BROWSER_NAMES: Final = (b"sec-fetch-site", b"origin", b"host")
_BROWSER: Final = frozenset(_BROWSER_NAMES)


def _latin1(value: object) -> str:
    if type(value) is not bytes:
        raise TypeError("ASGI header values must be bytes")  # the server's bug, not the client's
    return value.decode("latin-1")


def environ_key(header: str) -> str:
    """Where a WSGI server puts request header ``header`` (``x-own-token``:
    ``HTTP_X_OWN_TOKEN``).

    Args:
        header: the header's name.
    """
    return "HTTP_" + header.upper().replace("-", "_")


def credential_from_environ(
    environ: Mapping[str, object],
    cookie: TokenCookie | None = None,
    token_header: str | None = None,
) -> Credential | None:
    """The credential in a WSGI environ (Django's ``request.META`` too).

    Args:
        environ: the WSGI environ.
        cookie: the opt-in token cookie.
        token_header: a provider's own token header (lower-case), if one is configured.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    api_key = environ.get("HTTP_X_API_KEY")
    cookie_header = environ.get("HTTP_COOKIE") if cookie is not None else None
    own: str | None = None
    if token_header is not None:
        found = environ.get(environ_key(token_header))
        own = found if isinstance(found, str) else None
    if authorization is None and api_key is None and cookie_header is None and own is None:
        return None
    api_key = api_key if isinstance(api_key, str) else None
    proof = environ.get("HTTP_DPOP")
    # WSGI servers (wsgiref, gunicorn) join a repeated header's values with commas; no API
    # key or DPoP proof has one, so a comma means several headers (as for ASGI: a 400).
    credential = extract_credential(
        authorization if isinstance(authorization, str) else None,
        api_key,
        api_key_count=2 if api_key is not None and "," in api_key else 1,
        cookie_header=cookie_header if isinstance(cookie_header, str) else None,
        cookie_name=None if cookie is None else cookie.name,
        proofs=proof.split(",") if isinstance(proof, str) else (),
        token_header=token_header,
        header_token=own,
        header_token_count=2 if own is not None and "," in own else 1,
    )
    if cookie is not None and credential is not None and credential.from_cookie:
        cookie.refuse_cross_origin(
            _text(environ.get("REQUEST_METHOD")) or "",
            _text(environ.get("HTTP_SEC_FETCH_SITE")),
            _text(environ.get("HTTP_ORIGIN")),
            _text(environ.get("HTTP_HOST")),
        )
    return credential


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def credential_from_headers(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    cookie: TokenCookie | None = None,
    token_header: str | None = None,
    *,
    method: str = "",
) -> Credential | None:
    """The credential in any header collection: a mapping, or (name, value) pairs.

    Args:
        headers: a mapping (any case; a multi-valued mapping's ``items()`` should yield each
            value), or pairs of ``str`` or ``bytes``.
        cookie: the opt-in token cookie.
        token_header: a provider's own token header (lower-case), if one is configured.
        method: the request's method, for the cookie's cross-site check (``""``, unknown:
            checked as a method that changes something).
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = [
        (
            (n.decode("latin-1") if isinstance(n, bytes) else n)
            .lower()
            .encode("latin-1", "replace"),
            v if isinstance(v, bytes) else v.encode("latin-1", "replace"),
        )
        for n, v in items
    ]
    return credential_from_asgi(pairs, cookie, token_header, method=method)
