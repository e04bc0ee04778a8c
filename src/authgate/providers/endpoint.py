"""Verification endpoints: a generic one (:class:`RemoteVerifier`), and RFC 7662 token
introspection (:class:`IntrospectionProvider`).

Both call out through the one remote-call engine (cache, single-flight, 429, breaker).
Placeholders ``{token}`` in header values and body templates are replaced by the token with
``str.replace`` (never ``format``: a token cannot inject anything else).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._config import header_safe
from .._http import Plan, Request, Response, Upstream, check_url
from .._json import as_number
from .._log import safe_url
from .._remote import Claims, RemotePolicy, upstream_error
from ..errors import ConfigurationError, ExpiredToken, InvalidToken
from .base import RemoteProvider

if TYPE_CHECKING:
    import httpx

__all__ = [
    "IntrospectionProvider",
    "RemoteVerifier",
    "fill_template",
    "json_object_claims",
    "template_secrets",
]

_REJECTING = frozenset({400, 401, 403, 404, 422})


_TOKEN: Final = "{token}"  # noqa: S105 (a placeholder, not a secret)


def _method(method: Any) -> str:
    if not isinstance(method, str) or not method.isalpha():
        raise ConfigurationError("method must be an HTTP method name such as 'GET' or 'POST'")
    return method.upper()


def header_templates(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Header templates, checked: each value must be sendable once ``{token}`` is filled in.

    Args:
        headers: names to templates (default: ``Authorization: Bearer {token}``).
    """
    if headers is None:
        return {"authorization": "Bearer {token}"}
    if not isinstance(headers, Mapping):
        raise ConfigurationError("headers must be a mapping of header names to templates")
    for name, value in headers.items():
        header_safe(name, "a header name")
        # the token is visible ASCII (RFC 6750 b64token): a stand-in checks the rest
        header_safe(value.replace(_TOKEN, "t") if isinstance(value, str) else value, name)
    return dict(headers)


def template_secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The constant parts of header templates (API keys, Basic credentials), to redact.

    Args:
        headers: names to templates.
    """
    found: list[str] = []
    for value in headers.values():
        found.extend(part.strip() for part in value.split(_TOKEN) if len(part.strip()) >= 8)
    return tuple(found)


def fill_template(template: Any, token: str) -> Any:
    """``template`` with ``{token}`` replaced in every string (``str.replace``, never format)."""
    if isinstance(template, str):
        return template.replace("{token}", token)
    if isinstance(template, Mapping):
        return {key: fill_template(value, token) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_template(item, token) for item in template]
    return template


def json_object_claims(response: Response, what: str) -> Claims:
    """The default reading of an answer: 200 with a JSON object is the claims.

    401, 403, 404, 400 and 422 reject the token; anything else is an upstream failure.

    Args:
        response: the upstream response.
        what: the endpoint, for messages.
    """
    if response.status == 200:
        body = response.json()
        if isinstance(body, dict):
            return body
        raise upstream_error(response, what)
    if response.status in _REJECTING:
        raise InvalidToken(f"{what} rejected the token")
    raise upstream_error(response, what)


class RemoteVerifier(RemoteProvider):
    """Verify tokens at any endpoint: method, headers, body template, response → claims.

    Args:
        name: the provider's name.
        url: the endpoint (``https``, or ``http`` on loopback).
        method: the HTTP method.
        headers: header templates; ``{token}`` is replaced by the token.
        json: a JSON body template (``{token}`` replaced in every string), or ``None``.
        form: a form body template, or ``None``.
        claims: reads the response into claims, or raises ``InvalidToken`` (rejection) or
            :class:`~authgate._http.UpstreamError` (outage); default: 200 JSON object.
        issuer: route JWTs with this ``iss`` here.
        subject_claim: the claim holding the subject.
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
        clock: returns the current time.
        transport: deprecated: ``upstream=Upstream(transport=...)``.
        async_transport: deprecated: ``upstream=Upstream(async_transport=...)``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        claims: Callable[[Response], Claims] | None = None,
        issuer: str | None = None,
        subject_claim: str = "sub",
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url, "the verification URL")
        self.method = _method(method)
        self.headers = header_templates(headers)
        self.json = json
        self.form = form
        self.read_claims = claims or (lambda response: json_object_claims(response, name))
        super().__init__(
            name,
            issuer=issuer,
            subject_claim=subject_claim,
            policy=policy,
            upstream=upstream,
            clock=clock,
            transport=transport,
            async_transport=async_transport,
        )

    def __repr__(self) -> str:
        return f"RemoteVerifier({self.name!r}, {self.method} {safe_url(self.url)})"

    def _secrets(self) -> tuple[str, ...]:
        return template_secrets(self.headers)

    def _plan(self, token: str) -> Plan[Claims]:
        response = yield Request(
            self.method,
            self.url,
            fill_template(self.headers, token),
            json=fill_template(self.json, token),
            form=fill_template(self.form, token),
        )
        return self.read_claims(response)


class IntrospectionProvider(RemoteProvider):
    """RFC 7662 token introspection: ``active`` must be true; ``sub``/``client_id`` → subject.

    Args:
        name: the provider's name.
        url: the introspection endpoint.
        client_id: this resource server's client id (HTTP Basic authentication).
        client_secret: its secret.
        issuer: route JWTs with this ``iss`` here; when set, an answer's ``iss`` must match.
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
        clock: returns the current time.
        transport: deprecated: ``upstream=Upstream(transport=...)``.
        async_transport: deprecated: ``upstream=Upstream(async_transport=...)``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        issuer: str | None = None,
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url, "the introspection URL")
        if not client_id or not client_secret:
            raise ConfigurationError("introspection needs a client_id and client_secret")
        header_safe(client_id, "client_id")
        header_safe(client_secret, "client_secret")
        self._client_secret = client_secret
        pair = f"{client_id}:{client_secret}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode()
        self._clock = clock
        super().__init__(
            name,
            issuer=issuer,
            policy=policy,
            upstream=upstream,
            clock=clock,
            transport=transport,
            async_transport=async_transport,
        )

    def __repr__(self) -> str:
        return f"IntrospectionProvider({self.name!r}, {safe_url(self.url)})"

    def _secrets(self) -> tuple[str, ...]:
        return (self._client_secret, self._authorization, self._authorization[6:])

    def _plan(self, token: str) -> Plan[Claims]:
        response = yield Request(
            "POST",
            self.url,
            {"authorization": self._authorization, "accept": "application/json"},
            form={"token": token, "token_type_hint": "access_token"},
        )
        if response.status != 200:
            raise upstream_error(response, f"{self.name} introspection")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise upstream_error(response, f"{self.name} introspection (no 'active')")
        if body["active"] is not True:
            raise InvalidToken("the token is not active")
        if self.issuer is not None and body.get("iss", self.issuer) != self.issuer:
            raise InvalidToken("the token was issued by another issuer")
        exp = as_number(body.get("exp"))
        if exp is not None and exp <= self._clock():
            raise ExpiredToken("the token has expired")
        if "sub" not in body and isinstance(body.get("client_id"), str):
            body["sub"] = body["client_id"]
        return body
