"""The ASGI shell: raw ASGI, no Starlette import, no wrapper around ``send`` (but for a
response to a credential header HTTP caches do not know, which varies on it: see
:func:`authgate._shell.varies_on`).

Sets ``scope["user"]`` and ``scope["auth"]`` (so Starlette's ``request.user``,
``request.auth.scopes`` and ``@requires`` work unchanged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

from ._hitpath import TAIL_SLICE, UNSET, attach
from ._paths import PathRules
from ._responses import rejection
from ._shell import Shell, add_vary, varies_on
from .dpop import request_uri_asgi
from .errors import AuthGateError
from .extract import Credential, Proof, credential_from_asgi, with_request
from .mtls import certificate_asgi

__all__ = ["AuthGateMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI app, typed loosely on purpose: every framework's app and every server's call fit
(Starlette's ``MutableMapping`` scopes, Litestar's and asgiref's ``TypedDict`` ones)."""

POLICY_VIOLATION: Final = 1008
_DENIAL: Final = "websocket.http.response"  # the ASGI extension for answering a handshake
_GUARDED: Final = frozenset({"http", "websocket"})
_SHUTDOWN_DONE: Final = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


def _varying(send: Send, header: str) -> Send:
    """``send``, adding ``header`` to the response's ``Vary`` (one field line: not every
    cache combines several)."""

    async def varying_send(message: Message) -> None:
        if message.get("type") == "http.response.start":
            headers = list(message.get("headers", ()))
            for i, (name, value) in enumerate(headers):
                if type(name) is bytes and type(value) is bytes and name.lower() == b"vary":
                    varied = add_vary(value.decode("latin-1"), header)
                    headers[i] = (name, varied.encode("latin-1"))
                    break
            else:
                headers.append((b"vary", header.encode("latin-1")))
            message = {**message, "headers": headers}
        await send(message)

    return varying_send


class AuthGateMiddleware(Shell[ASGIApp]):
    """Authenticate every HTTP request and WebSocket handshake before the app sees it.

    Args:
        app: the ASGI app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: paths that skip authentication: exact (``/health``), or a prefix and
            everything below it (``/docs/*``), within the app (below its ``root_path``).

    At lifespan shutdown it closes the authenticator's pooled connections
    (:meth:`Authenticator.aclose`) before reporting the app's shutdown to the server.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # see ASGIApp
        get = self._get
        excluded = self._excluded
        if (
            get is not None
            and scope["type"] == "http"
            and (excluded is None or not excluded(scope))
        ):
            # the hit path (see _hitpath): one Authorization, no other credential header, a
            # cached whole credential not past its deadline; anything else takes the full path.
            value: Any = UNSET  # not None: a None value must still count as a header
            for name, found in scope["headers"]:  # a plain loop: the cheapest we measured
                if name == b"authorization":
                    if value is not UNSET:
                        break
                    value = found
                elif name == b"x-api-key":
                    break
            else:
                if type(value) is bytes:
                    entry = get(value[TAIL_SLICE])
                    if (
                        entry is not None
                        and entry[2] == value
                        and self._clock() < entry[0]
                        and (self._own is None or not self._carries_own(scope))
                    ):
                        self._cache.hits += 1
                        attach(scope, entry[1], self._realm)
                        await self.app(scope, receive, send)
                        return
                    if (
                        self._proved_lane
                        and value.startswith(b"DPoP ")
                        and await self._proved_hit(scope, value, receive, send)
                    ):
                        return
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_at_shutdown(send))
        elif (answer := await self._authenticate(scope, send)) is not None:
            await self.app(scope, receive, answer)

    async def _proved_hit(self, scope: Scope, value: bytes, receive: Receive, send: Send) -> bool:
        """The DPoP lane: a cached DPoP-bound token sent as ``DPoP <token>`` with one proof
        header, the proof checked as on the full path; whether it answered the request.

        Taken only when the whole header value after the scheme is a token the cache holds
        under the DPoP scheme (extracted, checked and verified when it was admitted) and the
        request carries exactly one ``DPoP`` header (the hit path's loop already saw one
        ``Authorization`` and no ``x-api-key``); anything else goes to the full path, which
        decides, including every 400.
        """
        jwt: Any = None
        host: Any = None  # the last one, as request_uri_asgi reads it
        for name, found in scope["headers"]:  # one loop for both
            if name == b"dpop":
                if jwt is not None:
                    return False
                jwt = found
            elif name == b"host" and type(found) is bytes:
                host = found
        if type(jwt) is not bytes or not (jwt := jwt.decode("latin-1").strip(" \t")):
            return False
        token = value[5:].decode("latin-1")
        principal = self._cache.get(("DPoP", token))  # a hit counted once: the lane is taken
        if principal is None:
            return False
        authenticator = self.authenticator
        dpop = authenticator.dpop
        assert dpop is not None  # the lane is open only with DPoP on
        proof = Proof(jwt, scope.get("method", "GET"), request_uri_asgi(scope, dpop, host))
        credential = Credential("bearer", token, proof)
        try:
            await authenticator.check_proof_async(credential, principal)
        except AuthGateError as exc:
            authenticator.refused(exc, credential, path=scope.get("path"))
            await self._reject(exc, scope, send)
            return True
        attach(scope, principal, self._realm)
        await self.app(scope, receive, send)
        return True

    def _carries_own(self, scope: Scope) -> bool:
        """Whether the request carries the provider header (:attr:`Shell._own`) too."""
        own = self._own
        return any(name == own for name, _ in scope["headers"])

    def _predicate(self, rules: PathRules) -> Callable[[Mapping[str, Any]], bool]:
        return rules.asgi()

    def _closing_at_shutdown(self, send: Send) -> Send:
        """``send``, closing the authenticator's connections before the app's shutdown is
        reported to the server (whether the app's own shutdown succeeded or not)."""

        async def lifespan_send(message: Message) -> None:
            if message.get("type") in _SHUTDOWN_DONE:
                await self.authenticator.aclose()
            await send(message)

        return lifespan_send

    async def _authenticate(self, scope: Scope, send: Send) -> Send | None:
        """Attach a principal, or let a scope we don't guard through: the ``send`` the app
        answers with (the response varies on a credential header caches do not know, see
        :func:`~authgate._shell.varies_on`); or answer the rejection (``None``)."""
        kind = scope["type"]
        if kind not in _GUARDED or self._is_excluded(scope):
            return send
        credential = None
        try:
            credential = credential_from_asgi(
                scope["headers"],
                self._cookie,
                self._token_header,
                method=scope.get("method", "") if kind == "http" else "",  # a handshake: ""
            )
            if credential is not None and credential.kind == "bearer":
                credential = self._with_request(credential, scope)
            principal = self._settle(
                None
                if credential is None
                else await self.authenticator.verify_credential_async(credential)
            )
        except AuthGateError as exc:
            self.authenticator.refused(exc, credential, path=scope.get("path"))
            await self._reject(exc, scope, send)
            return None
        attach(scope, principal, self._realm)
        header = varies_on(credential) if kind == "http" else None
        return send if header is None else _varying(send, header)

    def _with_request(self, credential: Credential, scope: Scope) -> Credential:
        """A token with what proves its binding: for DPoP, the method and URI its proof must
        name (a WebSocket handshake is a ``GET``); the client certificate's thumbprint, when
        certificates are configured."""
        certificates = self.authenticator.client_certificates
        if certificates is not None:
            thumbprint = certificate_asgi(scope, certificates)
            if thumbprint is not None:
                credential = credential._replace(certificate=thumbprint)
        dpop = self.authenticator.dpop
        if credential.proof is None or dpop is None:
            return credential
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        uri = request_uri_asgi(scope, dpop)
        return with_request(credential, method, uri) or credential

    async def _reject(self, exc: AuthGateError, scope: Scope, send: Send) -> None:
        prefix = "http."
        if scope["type"] == "websocket":
            if _DENIAL not in (scope.get("extensions") or {}):
                # Closing before accept makes the server refuse the handshake (ASGI spec): a
                # bare 403 to the client, the only answer servers without the extension give.
                await send(
                    {"type": "websocket.close", "code": POLICY_VIOLATION, "reason": exc.message}
                )
                return
            prefix = "websocket.http."  # the denial response: a real HTTP answer
        status, headers, body = rejection(exc, self.authenticator.realm, self.authenticator.dpop)
        await send(
            {
                "type": prefix + "response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": prefix + "response.body", "body": body, "more_body": False})
