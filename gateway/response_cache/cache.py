"""The response cache: repeated reads answered without running them again.

Only plain GraphQL queries whose root fields are all in CACHEABLE_ROOT_FIELDS are
cached, and only for callers who belong to a clinic. Each entry is keyed by

- the caller (user id and role: one user's answer is never served to another),
- the clinic's `data_version` read from the database just before (any committed
  write to the clinic, by any instance, moves it: see versions.py),
- the query text, operation name and variables.

A hit still leaves the audit trail a real execution would: the patient and notes
reads the original execution recorded are recorded again for this request.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.principal import Principal
from gateway.db.engine import Database
from gateway.db.models import Clinic
from gateway.response_cache.store import MemoryStore, RedisStore, Store
from gateway.services.audit import ReadRecord, record_reads_again
from gateway.settings import Settings

# Root fields whose answers depend only on the clinic's database rows and the caller.
# Anything else (audit log, alerts, metrics, 2FA state, plugin status) is never cached.
CACHEABLE_ROOT_FIELDS = frozenset(
    {"__typename", "me", "clinic", "patient", "patients", "session", "sessions", "node"}
)
CACHE_HEADER = "x-response-cache"


@lru_cache(maxsize=2048)
def is_cacheable(query: str, operation_name: str | None) -> bool:
    """A single query operation reading only cacheable root fields (cached by text)."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    selections = operations[0].selection_set.selections
    # Fragment spreads at the root are not looked into: conservatively not cached.
    return all(
        isinstance(s, FieldNode) and s.name.value in CACHEABLE_ROOT_FIELDS for s in selections
    )


@dataclass
class Lookup:
    key: str
    principal: Principal
    entry: bytes | None
    query: str  # with operation_name: what the access log and metrics label a hit with
    operation_name: str | None


def _encode(body: bytes, reads: list[ReadRecord]) -> bytes:
    header = orjson.dumps([list(r) for r in reads], default=str)
    return len(header).to_bytes(4, "big") + header + body


def _decode(entry: bytes) -> tuple[bytes, list[ReadRecord]]:
    size = int.from_bytes(entry[:4], "big")
    reads = [
        ReadRecord(
            action,
            uuid.UUID(clinic_id),
            target_type,
            uuid.UUID(target_id),
            uuid.UUID(patient_id) if patient_id else None,
        )
        for action, clinic_id, target_type, target_id, patient_id in orjson.loads(
            entry[4 : 4 + size]
        )
    ]
    return entry[4 + size :], reads


class ResponseCache:
    def __init__(self, settings: Settings, database: Database, store: Store | None = None):
        self.settings = settings
        self.database = database
        self.ttl = settings.response_cache_seconds
        self.store: Store = store or (
            RedisStore(settings.redis_url)
            if settings.redis_url
            else MemoryStore(settings.response_cache_max_bytes)
        )

    async def lookup(self, request: Request) -> Lookup | None:
        """The cache slot for this request, or None when it must not be cached."""
        principal: Principal | None = request.scope.get("state", {}).get("principal")
        if principal is None or principal.clinic_id is None or request.method != "POST":
            return None
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > self.settings.graphql_max_body_bytes:
            return None
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return None  # batches and hash-only persisted queries run normally
        query, name, variables = data["query"], data.get("operationName"), data.get("variables")
        if not isinstance(name, str | None) or not is_cacheable(query, name):
            return None
        version = await self._data_version(principal)
        if version is None:
            return None
        digest = hashlib.sha256(
            orjson.dumps(
                [str(principal.user_id), principal.role.value, query, name, variables],
                option=orjson.OPT_SORT_KEYS,
            )
        ).hexdigest()
        key = f"{principal.clinic_id}:{version}:{digest}"
        return Lookup(key, principal, await self.store.get(key), query, name)

    async def _data_version(self, principal: Principal) -> int | None:
        async with self.database.session(principal.tenant_scope()) as db:
            return await db.scalar(
                select(Clinic.data_version).where(Clinic.id == principal.clinic_id)
            )

    def answer(self, lookup: Lookup, request: Request) -> Response:
        """Serve a hit, recording the reads it discloses as this request's."""
        assert lookup.entry is not None
        body, reads = _decode(lookup.entry)
        state = request.scope.get("state", {})
        record_reads_again(
            self.database,
            reads,
            actor_user_id=lookup.principal.user_id,
            request_id=state.get("request_id"),
            ip=request.client.host if request.client else None,
        )
        return Response(body, media_type="application/json", headers={CACHE_HEADER: "hit"})

    async def save(self, lookup: Lookup, response: Any, reads: list[ReadRecord]) -> None:
        """Keep a complete, error-free answer; anything else is not cached."""
        if not isinstance(response, Response) or response.status_code != 200:
            return
        if "set-cookie" in response.headers:
            return
        body = bytes(response.body)
        if not body.startswith(b'{"data":') or b'"errors"' in body:
            return
        response.headers[CACHE_HEADER] = "miss"
        await self.store.set(lookup.key, _encode(body, reads), self.ttl)

    async def close(self) -> None:
        await self.store.close()
