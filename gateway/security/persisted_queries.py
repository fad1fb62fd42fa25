"""Persisted queries: Apollo's automatic persisted queries (APQ), and a production safelist.

APQ (on by default outside production): a client sends
`extensions.persistedQuery.sha256Hash` without the query; an unknown hash answers
PERSISTED_QUERY_NOT_FOUND, the client resends hash + query, and the pair is stored
(in process memory, or in Redis when REDIS_URL is set, so every worker knows it).

Safelist (GRAPHQL_SAFELIST_FILE): only documents listed in the file run, sent by
hash or in full; anything else answers PERSISTED_QUERY_NOT_ALLOWED. The file is a
JSON object {sha256: query} or an Apollo persisted-query manifest
({"operations": [{"id": sha256, "body": query}, ...]}).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.security.errors import LimitExceeded

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger("santana.apq")

APQ_TTL_SECONDS = 7 * 24 * 3600
MEMORY_ENTRIES = 5000


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def load_safelist(path: str) -> dict[str, str]:
    """Read and check the safelist: every hash must be the SHA-256 of its document."""
    raw = json.loads(Path(path).read_text())
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        pairs = [(op["id"], op["body"]) for op in raw["operations"]]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ValueError(
            f"{path}: expected a JSON object of sha256 -> query, or an Apollo manifest"
        )
    out: dict[str, str] = {}
    for digest, query in pairs:
        if not isinstance(query, str) or sha256_hex(query) != str(digest).lower():
            raise ValueError(f"{path}: entry {str(digest)[:12]}… is not the SHA-256 of its query")
        out[str(digest).lower()] = query
    return out


class PersistedQueries:
    def __init__(self, settings: Settings) -> None:
        self.apq_enabled = settings.graphql_apq_enabled
        self.safelist = (
            load_safelist(settings.graphql_safelist_file)
            if settings.graphql_safelist_file
            else None
        )
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._redis: Any = None
        self._prefix = f"{settings.rate_limit_namespace}:apq:"
        if settings.redis_url and self.apq_enabled and self.safelist is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(settings.redis_url)

    async def _get(self, digest: str) -> str | None:
        if self._redis is not None:
            try:
                value = await self._redis.get(self._prefix + digest)
                return value.decode() if value is not None else None
            except Exception as exc:  # Redis down: the client simply resends the query
                log.warning("APQ store unavailable (%s)", type(exc).__name__)
                return None
        query = self._memory.get(digest)
        if query is not None:
            self._memory.move_to_end(digest)
        return query

    async def _put(self, digest: str, query: str) -> None:
        if self._redis is not None:
            try:
                await self._redis.set(self._prefix + digest, query.encode(), ex=APQ_TTL_SECONDS)
            except Exception as exc:
                log.warning("APQ store unavailable (%s)", type(exc).__name__)
            return
        self._memory[digest] = query
        if len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    async def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document to run for this request, or a LimitExceeded saying why none may."""
        persisted = (extensions or {}).get("persistedQuery")
        digest = None
        if isinstance(persisted, dict):
            value = persisted.get("sha256Hash")
            if not isinstance(value, str) or persisted.get("version", 1) != 1:
                raise LimitExceeded(
                    "PERSISTED_QUERY_INVALID", "persistedQuery needs version 1 and a sha256Hash."
                )
            digest = value.lower()
        if self.safelist is not None:
            return self._from_safelist(query, digest)
        if digest is None:
            return query
        if not self.apq_enabled:
            raise LimitExceeded("PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported")
        if query is None:
            stored = await self._get(digest)
            if stored is None:
                # The message is what Apollo clients look for before resending the query.
                raise LimitExceeded("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
            return stored
        if sha256_hex(query) != digest:
            raise LimitExceeded(
                "PERSISTED_QUERY_HASH_MISMATCH", "provided sha does not match query"
            )
        await self._put(digest, query)
        return query

    def _from_safelist(self, query: str | None, digest: str | None) -> str:
        assert self.safelist is not None
        if query is not None:
            actual = sha256_hex(query)
            if digest is not None and actual != digest:
                raise LimitExceeded(
                    "PERSISTED_QUERY_HASH_MISMATCH", "provided sha does not match query"
                )
            digest = actual
        if digest is None or digest not in self.safelist:
            raise LimitExceeded(
                "PERSISTED_QUERY_NOT_ALLOWED",
                "Only operations on this server's safelist may run.",
                limit="safelist",
            )
        return self.safelist[digest]

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
