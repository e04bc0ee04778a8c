"""AWS Application Load Balancer: the user-claims token ALB signs and sends in
``x-amzn-oidc-data`` ("Authenticate users using an Application Load Balancer", Elastic Load
Balancing User Guide, "User claims encoding and signature verification").

ALB is the one issuer whose tokens break RFC 7515: it pads each segment with ``=`` and signs
the padded text. Padding is accepted here only, for tokens read from ALB's header only, and the
signature is checked over the text exactly as received. Everything else is as strict as
everywhere: ES256 only, a UUID ``kid`` whose PEM key is fetched from the region's endpoint,
``signer`` one of the configured load balancer ARNs and ``client`` one of the configured
client ids (both in the token's header, checked before any key fetch), ``exp`` and ``iss``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from .._codec import b64url_decode, canonical_tail
from .._json import loads_strict
from .._upstream import Upstream, upstream_of
from ..errors import BadAudience, BadIssuer, ConfigurationError, MalformedToken
from ..extract import refuse_oversized
from ..jwt import JWTVerifier, _Header, unverified_header
from ..keysources import ALBKeySource, alb_keys_url
from .base import JWTProvider
from .presets import _names

__all__ = ["ALB_HEADER", "aws_alb"]

ALB_HEADER: Final = "x-amzn-oidc-data"
"""The request header ALB puts its signed user claims in."""

_ARN: Final = re.compile(
    r"arn:aws(?:-us-gov)?:elasticloadbalancing:([a-z]{2}(?:-gov)?-[a-z]+-\d):\d{12}:"
    r"loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}"
)
_PADDED: Final = re.compile(r"([A-Za-z0-9_-]+=*)\.([A-Za-z0-9_-]+=*)\.([A-Za-z0-9_-]+=*)")


def _unpadded(segment: str, what: str) -> str:
    """A segment without its ``=`` padding, refused unless the padding is exactly right."""
    body = segment.rstrip("=")
    if len(body) != len(segment) and len(segment) % 4:
        raise MalformedToken(f"the {what} has misplaced base64 padding")
    if not canonical_tail(body):
        raise MalformedToken(f"the {what} is not canonical base64url")
    return body


class _ALBVerifier(JWTVerifier):
    """A :class:`JWTVerifier` for ALB's padded tokens that also checks ``signer`` and
    ``client`` in the header."""

    def __init__(
        self,
        keys: ALBKeySource,
        *,
        signers: frozenset[str],
        clients: frozenset[str] | None,
        issuer: str | None,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(
            keys, algorithms=["ES256"], issuer=issuer, required_claims=("exp", "sub"), clock=clock
        )
        self.signers = signers
        self.clients = clients

    def _decode(self, token: str | bytes) -> tuple[_Header, bytes, bytes, dict[str, Any]]:
        if type(token) is not str:
            raise MalformedToken("the token must be text")
        refuse_oversized(token, self.max_token_bytes)
        match = _PADDED.fullmatch(token)
        if match is None:
            raise MalformedToken("the ALB token is not three base64url segments")
        h, p, s = match.groups()
        segment = _unpadded(h, "header")
        fields = unverified_header(segment)
        signer, client = fields.get("signer"), fields.get("client")
        if not isinstance(signer, str) or signer not in self.signers:
            raise BadIssuer("the token was signed by another load balancer", claim="signer")
        if self.clients is not None and (not isinstance(client, str) or client not in self.clients):
            raise BadAudience("the token was issued to another client", claim="client")
        header = self._headers.get(segment)
        if header is None:
            header = self._parse_header(segment)
        try:
            claims = loads_strict(b64url_decode(_unpadded(p, "payload")))
        except ValueError:
            raise MalformedToken("the payload is not UTF-8 JSON without duplicates") from None
        if type(claims) is not dict:
            raise MalformedToken("the payload is not a JSON object")
        signature = b64url_decode(_unpadded(s, "signature"))
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise BadIssuer("the token issuer is not accepted").with_context(
                expected_iss=self.issuer
            )
        # the signature covers the segments as ALB sent them, padding included
        return header, token[: len(h) + len(p) + 1].encode(), signature, claims


class _ALB(JWTProvider):
    """Tokens from ALB's header only: never routed from ``Authorization``."""

    token_header = ALB_HEADER
    accepts_jwt = False

    def __repr__(self) -> str:
        return f"aws_alb({self.name!r})"


def aws_alb(
    load_balancer_arn: str | Iterable[str],
    *,
    client_id: str | Iterable[str] | None,
    issuer: str | None,
    name: str = "aws-alb",
    keys_url: str | None = None,
    upstream: Upstream | None = None,
) -> JWTProvider:
    """The user claims an AWS Application Load Balancer forwards after authenticating a user
    (its ``authenticate-oidc`` or ``authenticate-cognito`` action), checked as AWS documents
    ("Authenticate users using an Application Load Balancer", Elastic Load Balancing User
    Guide, "User claims encoding and signature verification"):
    the token from the ``x-amzn-oidc-data`` header (and nowhere else), ES256 under the key
    its ``kid`` names at ``https://public-keys.auth.elb.{region}.amazonaws.com/{kid}`` (the
    region taken from the ARN), ``signer`` your load balancer's ARN, ``client`` your client
    id, ``iss`` your identity provider, ``exp``. ALB's padded segments are accepted here only.

    The user's ``sub`` is the principal's subject; the other claims are the identity
    provider's user info. ``x-amzn-oidc-accesstoken`` (the identity provider's own access
    token) is not read: verify it with that provider's preset if you need it.

    Args:
        load_balancer_arn: your load balancer's ARN(s), all in one region.
        client_id: the client id(s) of the authenticate action; ``None`` explicitly to
            accept any (as aws-jwt-verify, there is no default).
        issuer: the identity provider's issuer as ALB puts it in ``iss``; ``None``
            explicitly to accept any.
        name: the provider's name.
        keys_url: instead of the region's key endpoint (a local fake).
        upstream: how to reach the keys.
    """
    signers = _names(load_balancer_arn, "load_balancer_arn")
    regions = set()
    for arn in signers:
        found = _ARN.fullmatch(arn)
        if found is None:
            raise ConfigurationError(
                f"{arn[:120]!r} is not an Application Load Balancer ARN "
                "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)"
            )
        regions.add(found.group(1))
    if len(regions) > 1:
        raise ConfigurationError("give one aws_alb provider per region: ALB keys are regional")
    clients = None if client_id is None else _names(client_id, "client_id")
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        raise ConfigurationError("issuer must be the identity provider's issuer, or None")
    source = ALBKeySource(keys_url or alb_keys_url(regions.pop()), upstream=upstream)
    verifier = _ALBVerifier(
        source, signers=signers, clients=clients, issuer=issuer, clock=upstream_of(upstream).clock
    )
    provider = _ALB(name, verifier)
    provider.issuer = None  # routed by its header, never by iss
    return provider
