"""Read-replica routing: which GraphQL operations may read from DATABASE_READ_URL.

A read-only operation (only queries, in a single request or a batch) runs on the
replica, unless its caller wrote something within READ_YOUR_WRITES_SECONDS: a user
who just booked a session must see it on the next page, and a streaming replica may
be a little behind. Mutations, and everything they read, run on the primary.

The time of each user's last write is kept in Redis when REDIS_URL is set (so the
instance that serves the next read knows it), else in this process.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import lru_cache
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

log = logging.getLogger("santana.db")


@lru_cache(maxsize=2048)
def _operation_types(query: str) -> dict[str | None, OperationType]:
    try:
        document = parse(query)
    except GraphQLError:
        return {}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    types: dict[str | None, OperationType] = {
        d.name.value if d.name else None: d.operation for d in operations
    }
    if len(operations) == 1:
        types[None] = operations[0].operation  # the one operation, whatever its name
    return types


def is_read_only(request_data: Any) -> bool:
    """True when every operation of the request is a query (a batch is a list)."""
    requests = request_data if isinstance(request_data, list) else [request_data]
    for data in requests:
        query = getattr(data, "query", None)
        if not query:
            return False  # unknown (e.g. not parsed yet): the primary is always right
        kind = _operation_types(query).get(getattr(data, "operation_name", None))
        if kind is not OperationType.QUERY:
            return False
    return True


class WriteMarks:
    """When each user last wrote, for as long as read-your-writes needs it."""

    def __init__(self, window_seconds: float, redis_url: str | None, namespace: str) -> None:
        self.window = window_seconds
        self.prefix = f"{namespace}:wrote:"
        self._local: dict[uuid.UUID, float] = {}
        self._redis: Any = None
        if redis_url and window_seconds > 0:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(redis_url)

    async def mark(self, user_id: uuid.UUID) -> None:
        if self.window <= 0:
            return
        if self._redis is not None:
            try:
                await self._redis.set(self.prefix + str(user_id), 1, px=int(self.window * 1000))
                return
            except Exception as exc:  # fall back to this process: better than nothing
                log.warning("could not record a write in Redis: %r", exc)
        now = time.monotonic()
        self._local[user_id] = now
        if len(self._local) > 10_000:  # forget the expired ones now and then
            self._local = {u: t for u, t in self._local.items() if now - t < self.window}

    async def recent(self, user_id: uuid.UUID) -> bool:
        """Did `user_id` write within the window? (Then its reads go to the primary.)"""
        if self.window <= 0:
            return False
        if self._redis is not None:
            try:
                if await self._redis.exists(self.prefix + str(user_id)):
                    return True
            except Exception:  # Redis down: the primary answers, which is always correct
                return True
        wrote = self._local.get(user_id)
        return wrote is not None and time.monotonic() - wrote < self.window

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


async def route(context: Any, request_data: Any, marks: WriteMarks) -> None:
    """Before an operation: may `context` read from the replica?"""
    principal = context.principal
    context.read_only = is_read_only(request_data) and not (
        principal is not None and await marks.recent(principal.user_id)
    )


async def remember_write(context: Any, marks: WriteMarks) -> None:
    """After an operation that was not read-only: its caller reads the primary for a while."""
    if not context.read_only and context.principal is not None:
        await marks.mark(context.principal.user_id)
