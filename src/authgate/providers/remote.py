"""Remote verification: a generic endpoint, and RFC 7662 token introspection.

Both call out through the one :class:`~authgate._remote.RemoteClient` (cache, single-flight,
429, breaker). Placeholders ``{token}`` in header values and body templates are replaced by the
token with ``str.replace`` (never ``format``: a token cannot inject anything else).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .._http import Plan, Request, Response, check_url
from .._remote import Claims, RemoteClient, RemotePolicy, upstream_error
from ..errors import ConfigurationError, ExpiredToken, InvalidToken
from ..extract import Credential
from ..principal import CredentialKind, Principal, principal_from_claims
from .base import Provider

__all__ = ["IntrospectionProvider", "RemoteProvider", "RemoteVerifier"]

_REJECTING = frozenset({400, 401, 403, 404, 422})


class RemoteProvider(Provider):
    """Shared shape of providers that verify at an endpoint: a client and a principal mapping.

    Args:
        name: the provider's name.
        policy: the remote call policy.
        clock: returns the current time.
        transport: an httpx transport for sync calls (tests inject one).
        async_transport: an httpx transport for async calls.
    """

    accepts_opaque = True
    subject_claim = "sub"

    def __init__(
        self,
        name: str,
        *,
        policy: RemotePolicy | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a provider needs a non-empty name")
        self.name = name
        self.client = RemoteClient(
            name,
            self._plan,
            policy=policy,
            clock=clock,
            transport=transport,
            async_transport=async_transport,
        )
        self.cache_ttl = self.client.policy.success_ttl

    def _plan(self, token: str) -> Plan[Claims]:
        raise NotImplementedError

    def verify(self, credential: Credential) -> Principal:
        return self.remote_principal(credential, self.client.verify(credential.value))

    async def verify_async(self, credential: Credential) -> Principal:
        return self.remote_principal(credential, await self.client.verify_async(credential.value))

    def remote_principal(self, credential: Credential, claims: Claims) -> Principal:
        """Map what the endpoint vouched for to the principal.

        Args:
            credential: the verified credential.
            claims: the endpoint's claims.
        """
        kind: CredentialKind = "jwt" if credential.value.count(".") == 2 else "opaque"
        return principal_from_claims(
            claims,
            provider=self.name,
            credential=kind,
            verified_by="remote",
            subject_claim=self.subject_claim,
        )


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
        clock: returns the current time.
        transport: an httpx transport for sync calls.
        async_transport: an httpx transport for async calls.
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
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url, "the verification URL")
        self.method = method.upper()
        self.headers = dict(headers or {"authorization": "Bearer {token}"})
        self.json = json
        self.form = form
        self.read_claims = claims or (lambda response: json_object_claims(response, name))
        self.issuer = issuer
        self.subject_claim = subject_claim
        super().__init__(
            name, policy=policy, clock=clock, transport=transport, async_transport=async_transport
        )

    def __repr__(self) -> str:
        return f"RemoteVerifier({self.name!r}, {self.method} {self.url})"

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
        clock: returns the current time.
        transport: an httpx transport for sync calls.
        async_transport: an httpx transport for async calls.
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
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url, "the introspection URL")
        if not client_id or not client_secret:
            raise ConfigurationError("introspection needs a client_id and client_secret")
        pair = f"{client_id}:{client_secret}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode()
        self.issuer = issuer
        self._clock = clock
        super().__init__(
            name, policy=policy, clock=clock, transport=transport, async_transport=async_transport
        )

    def __repr__(self) -> str:
        return f"IntrospectionProvider({self.name!r}, {self.url})"

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
        exp = body.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= self._clock():
            raise ExpiredToken("the token has expired")
        if "sub" not in body and isinstance(body.get("client_id"), str):
            body["sub"] = body["client_id"]
        return body
