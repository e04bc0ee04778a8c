"""The ASGI shell: raw ASGI, no Starlette import, no wrapper around ``send``.

Sets ``scope["user"]`` and ``scope["auth"]`` (so Starlette's ``request.user``,
``request.auth.scopes`` and ``@requires`` work unchanged) and ``scope["state"]["principal"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._responses import rejection
from ._shell import Shell
from .errors import AuthGateError
from .extract import credential_from_asgi
from .principal import ANONYMOUS, Anonymous, Principal

__all__ = ["AuthGateMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

POLICY_VIOLATION = 1008


class AuthGateMiddleware(Shell[ASGIApp]):
    """Authenticate every HTTP request and WebSocket handshake before the app sees it.

    Args:
        app: the ASGI app to protect.
        authenticator: the configured :class:`Authenticator`.
        required: when false, requests without any credential pass through as anonymous
            (a bad credential is still refused).
        exclude_paths: exact paths that skip authentication (e.g. ``/health``).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or (
            self.exclude_paths and scope["path"] in self.exclude_paths
        ):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        principal: Principal | Anonymous | None = None
        # The hot path: a cached principal under the exact Authorization value. Only values
        # that passed full validation are cached, so a hit needs no parsing. Any repeated
        # header name, or an x-api-key beside it, takes the full path (which answers 400). Only
        # Bearer values are looked up raw: API keys are cached as b"x-api-key:<key>", which an
        # Authorization header could otherwise spell out.
        entries, clock = self._entries, self._clock
        if entries is not None and clock is not None and type(headers) is list:
            by_name = dict(headers)
            authorization = by_name.get(b"authorization")
            if (
                authorization is not None
                and authorization.startswith(b"Bearer ")
                and len(by_name) == len(headers)
                and b"x-api-key" not in by_name
            ):
                entry = entries.get(authorization)
                if entry is not None and clock() < entry[0]:
                    principal = entry[1]
        if principal is None:
            try:
                credential = credential_from_asgi(headers, self._cookie)
                if credential is not None:
                    principal = self.authenticator.cached(credential)
                    if principal is None:
                        principal = await self.authenticator.verify_credential_async(credential)
            except AuthGateError as exc:
                await self._reject(exc, kind, send)
                return
        if principal is None:
            if self.required:
                await self._reject(None, kind, send)
                return
            principal = ANONYMOUS
        scope["user"] = scope["auth"] = principal
        state = scope.get("state")
        if state is None:
            scope["state"] = {"principal": principal}
        else:
            state["principal"] = principal
        await self.app(scope, receive, send)

    async def _reject(self, exc: AuthGateError | None, kind: str, send: Send) -> None:
        if kind == "websocket":
            # Closing before accept makes the server refuse the handshake (ASGI spec).
            reason = "authentication required" if exc is None else exc.message
            await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": reason})
            return
        status, headers, body = rejection(exc, self.authenticator.realm)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})
