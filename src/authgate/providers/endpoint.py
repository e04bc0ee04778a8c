"""Verification endpoints: a generic one (:class:`EndpointProvider`), and RFC 7662 token
introspection (:class:`IntrospectionProvider`).

Both call out through the one remote-call engine (cache, single-flight, 429, breaker).
Placeholders ``{token}`` in header values and body templates are replaced by the token with
``str.replace`` (never ``format``: a token cannot inject anything else).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote_plus

from .._config import header_safe, leeway_seconds, names
from .._exchange import Plan, Request, Response
from .._log import safe_url
from .._remote import Claims, RemotePolicy, upstream_error
from .._upstream import Upstream, allowed_http, check_url, upstream_of
from ..errors import BadAudience, BadIssuer, ConfigurationError, InvalidToken
from ..jwt import check_times
from ..principal import RolePath
from .base import RemoteProvider

__all__ = [
    "ClientAuth",
    "Endpoint",
    "EndpointProvider",
    "IntrospectionProvider",
    "endpoint_of",
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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A verification call: where it goes, how, and how its answer reads. ``{token}`` in a
    header value or a body template's strings is replaced by the token (``str.replace``).

    Args:
        url: the endpoint (``https``, or ``http`` on loopback); checked by the provider
            against its ``upstream``.
        method: the HTTP method.
        headers: header templates (default: ``Authorization: Bearer {token}``).
        json: a JSON body template, or ``None``.
        form: a form body template, or ``None``.
        read_claims: reads the response into claims, or raises ``InvalidToken`` (rejection)
            or :class:`~authgate.providers.UpstreamError` (outage); default: a 200 JSON object
            is the claims, 400/401/403/404/422 reject the token.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = field(default=None, repr=False)
    json: Any = field(default=None, repr=False)
    form: Mapping[str, str] | None = field(default=None, repr=False)
    read_claims: Callable[[Response], Claims] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ConfigurationError("Endpoint.url must be a URL")
        object.__setattr__(self, "method", _method(self.method))
        object.__setattr__(self, "headers", header_templates(self.headers))
        if self.json is not None and self.form is not None:
            raise ConfigurationError("an Endpoint sends a json or a form body, not both")
        if self.form is not None and not isinstance(self.form, Mapping):
            raise ConfigurationError("Endpoint.form must be a mapping of field names to templates")
        if self.read_claims is not None and not callable(self.read_claims):
            raise ConfigurationError("Endpoint.read_claims must be callable")

    def __repr__(self) -> str:
        return f"Endpoint({self.method} {safe_url(self.url)})"

    def request(self, token: str) -> Request:
        """The request that asks about ``token``.

        Args:
            token: the token.
        """
        return Request(
            self.method,
            self.url,
            fill_template(self.headers, token),
            json=fill_template(self.json, token),
            form=fill_template(self.form, token),
        )

    def read(self, response: Response, what: str) -> Claims:
        """The answer's claims (``read_claims``, else a 200 JSON object).

        Args:
            response: the endpoint's answer.
            what: the provider, for messages.
        """
        if self.read_claims is not None:
            return self.read_claims(response)
        return json_object_claims(response, what)

    def secrets(self) -> tuple[str, ...]:
        """The constant parts of its header templates (API keys, Basic credentials)."""
        assert self.headers is not None
        return template_secrets(self.headers)


def endpoint_of(value: Any, what: str, upstream: Upstream | None) -> Endpoint:
    """``value`` (an :class:`Endpoint`, or a URL for ``Endpoint(url)``), its URL checked
    against what ``upstream`` allows.

    Args:
        value: the configured endpoint.
        what: the setting, for messages.
        upstream: the provider's upstream (which ``http`` hosts it allows).
    """
    if isinstance(value, str):
        value = Endpoint(value)
    if not isinstance(value, Endpoint):
        raise ConfigurationError(f"{what} must be a URL or an authgate.Endpoint")
    check_url(value.url, what, allowed_http(upstream))
    return value


class EndpointProvider(RemoteProvider):
    """Verify tokens at any endpoint: method, headers, body template, response → claims.

    Args:
        name: the provider's name.
        endpoint: the call (:class:`Endpoint`), or just its URL: ``GET`` with
            ``Authorization: Bearer {token}``, a 200 JSON object being the claims.
        issuer: route JWTs with this ``iss`` here.
        subject_claim: the claim holding the subject.
        role_claims: where the roles are in the claims (see :class:`authgate.Roles`).
        policy: the remote call policy.
        upstream: how to reach the endpoint (timeouts, transports).
    """

    def __init__(
        self,
        name: str,
        endpoint: Endpoint | str,
        *,
        issuer: str | None = None,
        subject_claim: str = "sub",
        role_claims: Iterable[RolePath] = (),
        policy: RemotePolicy | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.endpoint = endpoint_of(endpoint, "the verification URL", upstream)
        self.url = self.endpoint.url
        super().__init__(
            name,
            issuer=issuer,
            subject_claim=subject_claim,
            role_claims=role_claims,
            policy=policy,
            upstream=upstream,
        )

    def __repr__(self) -> str:
        return f"EndpointProvider({self.name!r}, {self.endpoint.method} {safe_url(self.url)})"

    def secrets(self) -> tuple[str, ...]:
        return self.endpoint.secrets()

    def plan(self, token: str) -> Plan[Claims]:
        response = yield self.endpoint.request(token)
        return self.endpoint.read(response, self.name)


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How a resource server authenticates to an introspection endpoint (RFC 7662 §2.1):
    build one with :meth:`basic`, :meth:`post` or :meth:`bearer`. Its secrets never appear
    in its ``repr`` or in a log.

    Args:
        method: ``client_secret_basic``, ``client_secret_post`` or ``bearer``.
        client_id: the client id (empty for ``bearer``).
        secret: the client secret, or the Bearer token.
    """

    method: str
    client_id: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.method not in ("client_secret_basic", "client_secret_post", "bearer"):
            raise ConfigurationError(
                "ClientAuth.method must be 'client_secret_basic', 'client_secret_post' or "
                "'bearer': build it with ClientAuth.basic, .post or .bearer"
            )
        if self.method != "bearer":
            if not isinstance(self.client_id, str) or not self.client_id:
                raise ConfigurationError("introspection needs a client_id and client_secret")
            header_safe(self.client_id, "client_id")
        if not isinstance(self.secret, str) or not self.secret:
            raise ConfigurationError(
                "introspection needs a client_id and client_secret"
                if self.method != "bearer"
                else "ClientAuth.bearer needs the resource server's token"
            )
        header_safe(self.secret, "the bearer token" if self.method == "bearer" else "client_secret")

    @classmethod
    def basic(cls, client_id: str, client_secret: str) -> ClientAuth:
        """HTTP Basic (``client_secret_basic``), each part form-urlencoded before base64 as
        RFC 6749 §2.3.1 says (a secret with ``+``, ``/``, ``=`` or ``%`` works).

        Args:
            client_id: this resource server's client id.
            client_secret: its secret.
        """
        return cls("client_secret_basic", client_id, client_secret)

    @classmethod
    def post(cls, client_id: str, client_secret: str) -> ClientAuth:
        """``client_id`` and ``client_secret`` in the form body (``client_secret_post``).

        Args:
            client_id: this resource server's client id.
            client_secret: its secret.
        """
        return cls("client_secret_post", client_id, client_secret)

    @classmethod
    def bearer(cls, token: str) -> ClientAuth:
        """A Bearer token of the resource server's own (django-oauth-toolkit: an access
        token with the ``introspection`` scope).

        Args:
            token: the token.
        """
        return cls("bearer", "", token)

    def _basic(self) -> str:
        pair = f"{quote_plus(self.client_id, safe='')}:{quote_plus(self.secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def apply(self, headers: dict[str, str], form: dict[str, str]) -> None:
        """Put the credentials into a request's headers or form.

        Args:
            headers: the request's headers.
            form: its form body.
        """
        if self.method == "client_secret_basic":
            headers["authorization"] = self._basic()
        elif self.method == "bearer":
            headers["authorization"] = "Bearer " + self.secret
        else:
            form["client_id"], form["client_secret"] = self.client_id, self.secret

    def secrets(self) -> tuple[str, ...]:
        """Every spelling of the secret a log must never show."""
        if self.method == "bearer":
            return (self.secret,)
        basic = self._basic()
        return (self.secret, quote_plus(self.secret, safe=""), basic, basic[6:])


_KIND_MEMBERS: Final = ("token_type", "token_use", "typ")
"""Where introspection answers name the kind of token: RFC 7662's ``token_type``, Hydra's
``token_use``, Keycloak's ``typ``."""
_NOT_ACCESS_TOKENS: Final = frozenset(
    {"refresh", "refresh_token", "offline", "id", "id_token", "logout", "logout_token"}
)
"""Their values for tokens that are no access token (lower case)."""


class IntrospectionProvider(RemoteProvider):
    """RFC 7662 token introspection: the answer must say ``active: true``, not name a refresh,
    ID or logout token (``token_type``; Hydra's ``token_use``, Keycloak's ``typ``: servers
    answer for refresh tokens too, whatever the hint) and, when configured, name our audience
    and the issuer; see ``subject_claim`` for the subject.

    The resource server authenticates as ``auth`` says (:class:`ClientAuth`: HTTP Basic,
    ``client_secret_post``, or a Bearer token of its own). A 400 is the server's verdict on
    the token (a rejection, cached; it never opens the breaker); a 401 or 403 is about our own
    client credentials (a 503, logged as a configuration error, counted as an outage).

    Args:
        name: the provider's name.
        url: the introspection endpoint.
        auth: how this resource server authenticates (:class:`ClientAuth`), as httpx's
            ``auth=``.
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
        auth: ClientAuth,
        audience: str | Iterable[str] | None = None,
        issuer: str | None = None,
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
        if not isinstance(auth, ClientAuth):
            raise ConfigurationError(
                "auth must be an authgate.ClientAuth, e.g. ClientAuth.basic(client_id, secret)"
            )
        self.auth = auth
        self.audience: frozenset[str] | None = None
        if audience is not None:
            self.audience = frozenset(
                [audience] if isinstance(audience, str) else names(audience, "audience")
            )
            if not all(self.audience):
                raise ConfigurationError("audience must be a non-empty string or strings")
        self.token_type_hint = token_type_hint
        self.leeway = leeway_seconds(leeway)
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
        return self.auth.secrets()

    def plan(self, token: str) -> Plan[Claims]:
        headers = {"accept": "application/json"}
        form = {"token": token}
        if self.token_type_hint is not None:
            form["token_type_hint"] = self.token_type_hint
        self.auth.apply(headers, form)
        response = yield Request("POST", self.url, headers, form=form)
        what = f"{self.name} introspection"
        if response.status == 400:
            raise InvalidToken(f"{self.name} refused to introspect the token")
        if response.status in (401, 403):
            error = upstream_error(response, f"{what} refused our client credentials")
            error.message += " (check the provider's client credentials: a configuration error)"
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
        """The answer's kind of token, then its issuer, audience and times, checked as a JWT's
        would be."""
        for member in _KIND_MEMBERS:
            kind = body.get(member)
            if isinstance(kind, str) and kind.lower() in _NOT_ACCESS_TOKENS:
                # an active refresh token (Keycloak, Hydra, WSO2 answer for them too, whatever
                # the hint) lives far longer than an access token and is for the token endpoint
                raise InvalidToken("the token is not an access token", claim=member).with_context(
                    **{member: kind[:40]}
                )
        token_type, cnf = body.get("token_type"), body.get("cnf")
        if (
            isinstance(token_type, str)
            and token_type.lower() == "dpop"
            and not (isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str))
        ):
            # RFC 9449 §6.2: a DPoP-bound token's answer names its key; without it no proof
            # can be checked, and the token must never pass as a Bearer token (§7.2)
            raise InvalidToken(
                "the token is bound to a DPoP key the introspection answer does not name",
                claim="cnf",
            )
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
