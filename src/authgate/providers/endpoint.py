"""Verification endpoints: a generic one (:class:`EndpointProvider`), and RFC 7662 token
introspection (:class:`IntrospectionProvider`).

Both call out through the one remote-call engine (cache, single-flight, 429, breaker).
Placeholders ``{token}`` in header values and body templates are replaced by the token with
``str.replace`` (never ``format``: a token cannot inject anything else).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote_plus

from .._config import header_safe, names, non_negative
from .._exchange import Plan, Request, Response
from .._log import safe_url
from .._remote import Claims, RemotePolicy, upstream_error
from .._upstream import Upstream, allowed_http, check_url, upstream_of
from ..errors import BadAudience, BadIssuer, ConfigurationError, InvalidToken
from ..jwt import check_times
from ..principal import RolePath
from .base import RemoteProvider

if TYPE_CHECKING:
    pass

__all__ = [
    "EndpointProvider",
    "IntrospectionProvider",
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


class EndpointProvider(RemoteProvider):
    """Verify tokens at any endpoint: method, headers, body template, response → claims.

    Args:
        name: the provider's name.
        url: the endpoint (``https``, or ``http`` on loopback).
        method: the HTTP method.
        headers: header templates; ``{token}`` is replaced by the token.
        json: a JSON body template (``{token}`` replaced in every string), or ``None``.
        form: a form body template, or ``None``.
        read_claims: reads the response into claims, or raises ``InvalidToken`` (rejection)
            or :class:`~authgate.providers.UpstreamError` (outage); default: a 200 JSON object.
        issuer: route JWTs with this ``iss`` here.
        subject_claim: the claim holding the subject.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
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
        read_claims: Callable[[Response], Claims] | None = None,
        issuer: str | None = None,
        subject_claim: str = "sub",
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.url = check_url(url, "the verification URL", allowed_http(upstream))
        self.method = _method(method)
        self.headers = header_templates(headers)
        self.json = json
        self.form = form
        self.read_claims = read_claims or (lambda response: json_object_claims(response, name))
        super().__init__(
            name,
            issuer=issuer,
            subject_claim=subject_claim,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )

    def __repr__(self) -> str:
        return f"EndpointProvider({self.name!r}, {self.method} {safe_url(self.url)})"

    def secrets(self) -> tuple[str, ...]:
        return template_secrets(self.headers)

    def plan(self, token: str) -> Plan[Claims]:
        response = yield Request(
            self.method,
            self.url,
            fill_template(self.headers, token),
            json=fill_template(self.json, token),
            form=fill_template(self.form, token),
        )
        return self.read_claims(response)


class IntrospectionProvider(RemoteProvider):
    """RFC 7662 token introspection: the answer must say ``active: true`` and, when configured,
    name our audience and the issuer; ``sub`` (else ``client_id``) is the subject.

    Client authentication follows RFC 6749 §2.3.1: HTTP Basic with each part form-urlencoded
    before base64 (a secret with ``+``, ``/``, ``=`` or ``%`` works), or ``client_secret_post``.
    A 400 is the server's verdict on the token (a rejection, cached; it never opens the
    breaker); a 401 or 403 is about our own client credentials (a 503, logged as a
    configuration error, counted as an outage).

    Args:
        name: the provider's name.
        url: the introspection endpoint.
        client_id: this resource server's client id.
        client_secret: its secret.
        audience: when set (a string or strings), the answer's ``aud`` must contain one.
            Unset, it is not checked: set it, since any client of a server may introspect
            tokens issued for other resource servers.
        issuer: when set, the answer's ``iss``, when it carries one, must equal it (RFC 7662
            makes ``iss`` optional; glewlwyd and django-oauth-toolkit never send it), and
            opaque tokens and JWTs with this ``iss`` are routed here (JWTs go to a provider
            verifying them locally with the same issuer first).
        subject_claim: the answer's member naming the subject. Unset (RFC 7662 §2.2): ``sub``,
            else ``username`` (the resource owner, as django-oauth-toolkit answers), else
            ``client_id`` only for a token without a resource owner (client credentials).
        auth_method: ``client_secret_basic`` (the default) or ``client_secret_post``.
        token_type_hint: sent with each token (``None``: no hint).
        leeway: seconds of clock skew on the answer's ``exp``, ``nbf`` and ``iat``.
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        audience: str | Iterable[str] | None = None,
        issuer: str | None = None,
        auth_method: str = "client_secret_basic",
        token_type_hint: str | None = "access_token",  # noqa: S107 (a hint name, not a secret)
        leeway: float = 30.0,
        subject_claim: str | None = None,
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.url = check_url(url, "the introspection URL", allowed_http(upstream))
        if subject_claim is not None and (not isinstance(subject_claim, str) or not subject_claim):
            raise ConfigurationError("subject_claim must be a claim name")
        self._subject_claim = subject_claim
        if not client_id or not client_secret:
            raise ConfigurationError("introspection needs a client_id and client_secret")
        header_safe(client_id, "client_id")
        header_safe(client_secret, "client_secret")
        if auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError(
                "auth_method must be 'client_secret_basic' or 'client_secret_post'"
            )
        self.audience: frozenset[str] | None = None
        if audience is not None:
            self.audience = frozenset(
                [audience] if isinstance(audience, str) else names(audience, "audience")
            )
            if not all(self.audience):
                raise ConfigurationError("audience must be a non-empty string or strings")
        self._client_id = client_id
        self._client_secret = client_secret
        self.auth_method = auth_method
        self.token_type_hint = token_type_hint
        self.leeway = non_negative(leeway, "leeway")
        # RFC 6749 §2.3.1: each part form-urlencoded, then base64 of "id:secret"
        pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
        self._authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        self._clock = upstream_of(upstream).clock
        super().__init__(
            name,
            issuer=issuer,
            subject_claim=subject_claim or "sub",
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )

    def __repr__(self) -> str:
        return f"IntrospectionProvider({self.name!r}, {safe_url(self.url)})"

    def secrets(self) -> tuple[str, ...]:
        return (
            self._client_secret,
            quote_plus(self._client_secret, safe=""),
            self._authorization,
            self._authorization[6:],
        )

    def plan(self, token: str) -> Plan[Claims]:
        headers = {"accept": "application/json"}
        form = {"token": token}
        if self.token_type_hint is not None:
            form["token_type_hint"] = self.token_type_hint
        if self.auth_method == "client_secret_basic":
            headers["authorization"] = self._authorization
        else:
            form["client_id"], form["client_secret"] = self._client_id, self._client_secret
        response = yield Request("POST", self.url, headers, form=form)
        what = f"{self.name} introspection"
        if response.status == 400:
            raise InvalidToken(f"{self.name} refused to introspect the token")
        if response.status in (401, 403):
            error = upstream_error(response, f"{what} refused our client credentials")
            error.message += " (check client_id and client_secret: a configuration error)"
            raise error
        if response.status != 200:
            raise upstream_error(response, what)
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise upstream_error(response, f"{what} (no boolean 'active')")
        if body["active"] is not True:
            raise InvalidToken("the token is not active")
        self._check_answer(body)
        if self._subject_claim is None and "sub" not in body:
            # RFC 7662 §2.2: the resource owner's username names them when sub is absent;
            # only a token without a resource owner is its client's (never merge two users)
            owner = body.get("username")
            if isinstance(owner, str) and owner:
                body["sub"] = owner
            elif "username" not in body and isinstance(body.get("client_id"), str):
                body["sub"] = body["client_id"]
        return body

    def _check_answer(self, body: Claims) -> None:
        """The answer's issuer, audience and times, checked as a JWT's would be."""
        if self.issuer is not None and "iss" in body and body["iss"] != self.issuer:
            raise BadIssuer("the token was issued by another issuer").with_context(
                expected_iss=self.issuer, iss=body.get("iss")
            )
        if self.audience is not None:
            aud = body.get("aud")
            granted = [aud] if isinstance(aud, str) else aud
            if not isinstance(granted, list) or self.audience.isdisjoint(
                a for a in granted if isinstance(a, str)
            ):
                raise BadAudience("the token was issued for another audience").with_context(
                    expected_aud=" ".join(sorted(self.audience)), aud=aud
                )
        check_times(body, self._clock(), self.leeway)  # as for a JWT
