"""Where cached responses live: this process's memory, or Redis shared by every instance.

Entries are opaque bytes with a time to live. Keys already carry the clinic's data
version, so a store never needs invalidating: stale entries simply stop being asked
for and age out.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("santana.response_cache")


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Least-recently-used entries, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge answer must not empty the cache
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, value)
        self.size += len(value)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(value)

    async def close(self) -> None:
        self._entries.clear()
        self.size = 0


class RedisStore:
    """Shared by every instance; a Redis outage only means misses, never errors."""

    def __init__(self, url: str, prefix: str = "santana:rc:") -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._redis: Any = aioredis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self.prefix + key)
        except Exception as exc:
            log.warning("response cache read failed: %s", type(exc).__name__)
            return None
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self._redis.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            log.warning("response cache write failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()
