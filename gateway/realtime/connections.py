"""Websocket connections: who is subscribing, how many, and until when.

graphql-transport-ws authenticates in `connection_init`: its payload carries the same
access token as HTTP requests (`{"Authorization": "Bearer <token>"}`; browsers cannot
set headers on a websocket). The Principal it names scopes every subscription of the
connection exactly like a query. When the token expires the socket is closed with
4403 (Forbidden): graphql-transport-ws clients treat it as retryable, reconnect and
send a fresh token in the next `connection_init`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from strawberry.exceptions import ConnectionRejectionError

from gateway.auth.principal import Principal
from gateway.auth.tokens import decode_access_token
from gateway.errors import Unauthenticated
from gateway.realtime.bus import EventBus
from gateway.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from gateway.services.context import ServiceContext

log = logging.getLogger("santana.realtime")

EXPIRED_CLOSE_CODE = 4403


@dataclass
class Connection:
    """One authenticated websocket: its principal, its bus, and its expiry."""

    principal: Principal
    bus: EventBus
    expires_at: datetime
    # Subscriptions of one connection share its context (and database session): one at a time.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    expiry: asyncio.Task[None] | None = None

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.expires_at

    @asynccontextmanager
    async def turn(self, ctx: ServiceContext) -> AsyncIterator[None]:
        """Exclusive use of the connection's context while one event is loaded and sent."""
        async with self.lock:
            try:
                yield
            finally:
                # Fresh session and loaders per event: nothing read for one event is reused.
                await ctx.close()
                if hasattr(ctx, "_loaders"):
                    ctx._loaders = None


class Connections:
    """Admits websocket connections of this process and keeps count per user."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.per_user: Counter[uuid.UUID] = Counter()

    async def open(self, context: Any) -> None:
        """`connection_init`: authenticate, apply the per-user limit, arm the expiry."""
        token = _bearer(context.connection_params or {}) or _header_token(context.request)
        if not token:
            raise ConnectionRejectionError({"reason": "missing", "message": "Log in first."})
        try:
            principal = decode_access_token(token, self.settings.jwt_verification_secrets())
        except Unauthenticated as exc:
            reason = exc.extensions.get("reason", "invalid")
            raise ConnectionRejectionError({"reason": reason, "message": exc.message}) from exc
        if principal.clinic_id is None:  # platform admins read no clinical data
            raise ConnectionRejectionError(
                {"reason": "forbidden", "message": "Subscriptions are for clinic accounts."}
            )
        if self.per_user[principal.user_id] >= self.settings.subscription_connections_per_user:
            raise ConnectionRejectionError(
                {"reason": "too_many_connections", "message": "Too many open connections."}
            )
        self.per_user[principal.user_id] += 1
        expires_at = _expiry(token)
        connection = Connection(principal=principal, bus=self.bus, expires_at=expires_at)
        connection.expiry = asyncio.create_task(_close_when_expired(context.request, expires_at))
        context.sign_in(principal)
        context.connection = connection

    async def close(self, context: Any) -> None:
        """The socket is gone (client left, token expired, shutdown): release what it held."""
        connection: Connection | None = getattr(context, "connection", None)
        if connection is None:
            return
        context.connection = None
        if connection.expiry is not None:
            connection.expiry.cancel()
            with suppress(asyncio.CancelledError):
                await connection.expiry
        user = connection.principal.user_id
        self.per_user[user] -= 1
        if self.per_user[user] <= 0:
            del self.per_user[user]
        await context.close()

    @property
    def open_count(self) -> int:
        return sum(self.per_user.values())


def _bearer(params: dict[str, Any]) -> str | None:
    for key in ("Authorization", "authorization", "token"):
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            scheme, _, rest = value.strip().partition(" ")
            return rest.strip() if scheme.lower() == "bearer" and rest else value.strip()
    return None


def _header_token(websocket: Any) -> str | None:
    headers = getattr(websocket, "headers", None)
    value = headers.get("authorization", "") if headers is not None else ""
    return _bearer({"Authorization": value}) if value else None


def _expiry(token: str) -> datetime:
    # The signature was verified just now by decode_access_token; only `exp` is read here.
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


async def _close_when_expired(websocket: Any, expires_at: datetime) -> None:
    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))
    log.info("closing a subscription connection: its access token expired")
    with suppress(Exception):  # already closing
        await websocket.close(code=EXPIRED_CLOSE_CODE, reason="Access token expired")
