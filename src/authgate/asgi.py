"""The ASGI shell: raw ASGI, no Starlette import, no wrapper around ``send``.

Sets ``scope["user"]`` and ``scope["auth"]`` (so Starlette's ``request.user``,
``request.auth.scopes`` and ``@requires`` work unchanged) and ``scope["state"]["principal"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from operator import attrgetter
from typing import Any, Final

from ._hitpath import ASGIEntry, asgi_entry, attach
from ._paths import PathRules
from ._responses import rejection
from ._shell import Shell
from .errors import AuthGateError
from .extract import credential_from_asgi

__all__ = ["AuthGateMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

POLICY_VIOLATION: Final = 1008
_DENIAL: Final = "websocket.http.response"  # the ASGI extension for answering a handshake
_GUARDED: Final = frozenset({"http", "websocket"})
_SHUTDOWN_DONE: Final = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


async def _asgi_application(scope: Scope, receive: Receive, send: Send) -> None:
    """The signature an :class:`AuthGateMiddleware` shows ``inspect`` before Python 3.12."""
    raise NotImplementedError  # never called: only its code object is read


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

    # ``middleware(scope, receive, send)`` calls the entry point built at construction: the
    # hit path (see _hitpath), which falls back to _full. A property: no frame in between.
    __call__: property = property(attrgetter("_entry"))

    # Servers ask whether an app is ASGI 3 before serving it. The entry is a plain function
    # marked as a coroutine function (_hitpath.mark_async), which asyncio.iscoroutinefunction
    # (uvicorn, Starlette, Django) reads; before 3.12 inspect.iscoroutinefunction (hypercorn)
    # reads no marker, and inspect.signature on 3.12 stops at the property. Both take a
    # "function-like" object (as Cython's functions are) by these attributes: an instance
    # answers for itself with an async (scope, receive, send) code object.
    __code__ = _asgi_application.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __name__ = "AuthGateMiddleware"

    def _build_entry(self) -> None:
        self._entry: ASGIEntry = asgi_entry(
            self, self._full, self.authenticator.cache, self._excluded, self.authenticator.realm
        )

    def _predicate(self, rules: PathRules) -> Callable[[Mapping[str, Any]], bool]:
        return rules.asgi()

    async def _full(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The full path: authenticate (or let a scope we don't guard through), then the app."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_at_shutdown(send))
        elif await self._authenticate(scope, send):
            await self.app(scope, receive, send)

    def _closing_at_shutdown(self, send: Send) -> Send:
        """``send``, closing the authenticator's connections before the app's shutdown is
        reported to the server (whether the app's own shutdown succeeded or not)."""

        async def lifespan_send(message: Message) -> None:
            if message.get("type") in _SHUTDOWN_DONE:
                await self.authenticator.aclose()
            await send(message)

        return lifespan_send

    async def _authenticate(self, scope: Scope, send: Send) -> bool:
        """Attach a principal, or let a scope we don't guard through (true); or answer the
        rejection (false)."""
        kind = scope["type"]
        if kind not in _GUARDED or self._is_excluded(scope):
            return True
        credential = None
        try:
            credential = credential_from_asgi(scope["headers"], self._cookie)
            principal = self._settle(
                None
                if credential is None
                else await self.authenticator.verify_credential_async(credential)
            )
        except AuthGateError as exc:
            self.authenticator.refused(exc, credential, path=scope.get("path"))
            await self._reject(exc, scope, send)
            return False
        attach(scope, principal, self.authenticator.realm)
        return True

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
        status, headers, body = rejection(exc, self.authenticator.realm)
        await send(
            {
                "type": prefix + "response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": prefix + "response.body", "body": body})
