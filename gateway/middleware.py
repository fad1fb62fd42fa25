"""ASGI middleware: request id, and the bearer token turned into a Principal.

Pure ASGI (no BaseHTTPMiddleware) so it adds no task or buffering per request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth.tokens import decode_access_token
from gateway.errors import Unauthenticated

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Sets scope["state"]: request_id, principal, auth_error."""

    def __init__(
        self,
        app: ASGIApp,
        jwt_secret: str,
        verification_secrets: Callable[[], list[str]] | None = None,
    ) -> None:
        self.app = app
        self.jwt_secret = jwt_secret
        # During a JWT secret rotation this also yields the previous secret (until its grace ends).
        self.verification_secrets = verification_secrets or (lambda: [jwt_secret])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = None
        state["auth_error"] = None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                state["auth_error"] = Unauthenticated(
                    "Authorization header must be `Bearer <token>`.", reason="malformed"
                )
            else:
                try:
                    state["principal"] = decode_access_token(
                        token.strip(), self.verification_secrets()
                    )
                except Unauthenticated as exc:
                    state["auth_error"] = exc

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)
