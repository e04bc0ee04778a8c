"""A WebSocket app behind AuthGateMiddleware, importable by servers started as processes
(``uvicorn tests.ws_app:app``, ``hypercorn``, ``granian``): a static HS256 key, no I/O."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from authgate import Authenticator, JWTProvider, JWTVerifier, KeySet, TokenCookie
from authgate.asgi import AuthGateMiddleware

ISSUER = "https://ws.test"
SECRET = b"websocket-test-secret-of-32-bytes!"


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.user.identity})
    await websocket.close()


verifier = JWTVerifier(KeySet.from_secret(SECRET), algorithms=["HS256"], issuer=ISSUER)
app = AuthGateMiddleware(
    Starlette(routes=[WebSocketRoute("/ws", echo)]),
    Authenticator([JWTProvider("ws", verifier)], realm="sockets", cookie=TokenCookie("session")),
)
