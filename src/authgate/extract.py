"""Find the credential in a request's headers: ``Authorization: Bearer``, ``x-api-key``, a cookie.

Never from the query string. Ambiguity is the client's error (400 ``invalid_request``): several
``Authorization`` headers, an empty or multi-part Bearer value, a Bearer token and an API key
together. A non-Bearer ``Authorization`` scheme (e.g. ``Basic``) is not ours and counts as no
credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, Literal, NamedTuple

from .errors import InvalidRequest, TokenTooLarge

__all__ = [
    "Credential",
    "credential_from_asgi",
    "credential_from_environ",
    "credential_from_headers",
    "extract_credential",
    "is_jwt",
    "refuse_oversized",
]

MAX_TOKEN_BYTES: Final = 16384
"""The default size cap of a credential, checked before any routing or parsing."""

# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# An auth-scheme is an RFC 9110 token; what follows it decides whether the header is well-formed.
_SCHEME = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(.*)", re.DOTALL)
_API_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # visible ASCII, no spaces, no commas


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


class Credential(NamedTuple):
    """A credential as found in the request; ``value`` is secret and never logged."""

    kind: Literal["bearer", "api_key"]
    value: str

    @property
    def is_jwt(self) -> bool:
        """Whether the value has a JWT's shape (three dot-separated parts): routing only."""
        return is_jwt(self.value)

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, value=<{len(self.value)} chars>)"


def extract_credential(
    authorization: str | None,
    api_key: str | None,
    *,
    authorization_count: int = 1,
    api_key_count: int = 1,
    cookie_header: str | None = None,
    cookie_name: str | None = None,
) -> Credential | None:
    """Decide which credential a request carries, or raise :class:`InvalidRequest`.

    Args:
        authorization: the ``Authorization`` header value, if any.
        api_key: the ``x-api-key`` header value, if any.
        authorization_count: how many ``Authorization`` headers there were.
        api_key_count: how many ``x-api-key`` headers there were.
        cookie_header: the ``Cookie`` header, consulted only when ``cookie_name`` is set.
        cookie_name: the cookie holding a bearer token (opt-in).
    """
    if authorization_count > 1:
        raise InvalidRequest("send one Authorization header, not several")
    if api_key_count > 1:
        raise InvalidRequest("send one x-api-key header, not several")
    bearer = None
    if authorization is not None:
        parsed = _SCHEME.match(authorization.strip(" "))
        scheme, rest = parsed.groups() if parsed is not None else ("", "")
        scheme = scheme.lower()
        if scheme == "bearer":
            if rest and rest[0] != " ":  # "Bearer<TAB>x", "Bearer,x": never read as no credential
                raise InvalidRequest(
                    "the Bearer scheme must be followed by one space and the token"
                )
            bearer = rest.lstrip(" ")
            if not bearer:
                raise InvalidRequest("the Bearer credential is empty")
            if _B64TOKEN.fullmatch(bearer) is None:
                raise InvalidRequest("the Bearer credential must be one token of RFC 6750 syntax")
        elif scheme == "dpop":
            # A DPoP-bound token must be checked with its proof (RFC 9449); until authgate
            # checks proofs, such a request is refused, never let through as anonymous.
            raise InvalidRequest("DPoP-bound tokens are not accepted by this resource server")
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
        return Credential("bearer", bearer)
    if cookie_name is not None and cookie_header:
        value = _cookie(cookie_header, cookie_name)
        if value:
            return Credential("bearer", value)
    return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip().strip('"')
            return value if _B64TOKEN.fullmatch(value) else None
    return None


def credential_from_asgi(
    headers: Iterable[tuple[bytes, bytes]], cookie_name: str | None = None
) -> Credential | None:
    """The credential in raw ASGI headers (lower-case names, latin-1 values).

    Args:
        headers: ``scope["headers"]``.
        cookie_name: the opt-in bearer cookie.
    """
    authorization: str | None = None
    api_key: str | None = None
    cookie: object = None
    n_auth = n_key = 0
    # Read as the hit path reads them, so both agree on any header list.
    for name, value in headers:
        if name == b"authorization":
            authorization = _latin1(value)
            n_auth += 1
        elif name == b"x-api-key":
            api_key = _latin1(value)
            n_key += 1
        elif name == b"cookie" and cookie_name is not None:
            cookie = value
    if authorization is None and api_key is None:
        if cookie is None:
            return None
        cookie = _latin1(cookie)  # read only when it is the credential
    return extract_credential(
        authorization,
        api_key,
        authorization_count=n_auth,
        api_key_count=n_key,
        cookie_header=cookie if isinstance(cookie, str) else None,
        cookie_name=cookie_name,
    )


def _latin1(value: object) -> str:
    if type(value) is not bytes:
        raise TypeError("ASGI header values must be bytes")  # the server's bug, not the client's
    return value.decode("latin-1")


def credential_from_environ(
    environ: Mapping[str, object], cookie_name: str | None = None
) -> Credential | None:
    """The credential in a WSGI environ.

    Args:
        environ: the WSGI environ.
        cookie_name: the opt-in bearer cookie.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    api_key = environ.get("HTTP_X_API_KEY")
    cookie = environ.get("HTTP_COOKIE") if cookie_name is not None else None
    if authorization is None and api_key is None and cookie is None:
        return None
    api_key = api_key if isinstance(api_key, str) else None
    # WSGI servers (wsgiref, gunicorn) join a repeated header's values with commas; no API
    # key has one, so a comma means several x-api-key headers (as for ASGI: a 400).
    return extract_credential(
        authorization if isinstance(authorization, str) else None,
        api_key,
        api_key_count=2 if api_key is not None and "," in api_key else 1,
        cookie_header=cookie if isinstance(cookie, str) else None,
        cookie_name=cookie_name,
    )


def credential_from_headers(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    cookie_name: str | None = None,
) -> Credential | None:
    """The credential in any header collection: a mapping, or (name, value) pairs.

    Args:
        headers: a mapping (any case; a multi-valued mapping's ``items()`` should yield each
            value), or pairs of ``str`` or ``bytes``.
        cookie_name: the opt-in bearer cookie.
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
    return credential_from_asgi(pairs, cookie_name)
