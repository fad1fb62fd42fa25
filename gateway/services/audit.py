"""The audit log: one row per security- or data-relevant action.

Changes are recorded in the transaction of the change (`record`). Reads of patient
records and notes are many and happen in read-only requests, so `record_read`
only queues them; `ReadAuditWriter` writes the queue in one transaction per
AUDIT_FLUSH_SECONDS (and on shutdown). Rows are chained per clinic (audit_chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.permissions import Action, require
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import Forbidden, ValidationFailed
from gateway.services import audit_chain  # also registers the hash-chain hook
from gateway.services.pagination import Page, check_page_size, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from gateway.db.engine import Database
    from gateway.services.context import ServiceContext

log = logging.getLogger("santana.audit")


def record(
    db: AsyncSession,
    action: str,
    *,
    clinic_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    ip: str | None = None,
    patient_id: uuid.UUID | None = None,
) -> AuditEvent:
    """Add an audit row to `db`'s transaction: it commits (or not) with the change it describes.

    `details` must hold identifiers and field names only, never PHI or secrets.
    """
    if patient_id is None and target_type == "patient" and isinstance(target_id, uuid.UUID):
        patient_id = target_id
    event = AuditEvent(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        outcome=outcome,
        details=details or {},
        request_id=request_id,
        ip=ip,
        patient_id=patient_id,
        created_at=utcnow(),
    )
    db.add(event)
    return event


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    action: str
    clinic_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    patient_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    request_id: str | None
    ip: str | None


class ReadRecord(NamedTuple):
    """What was read, without who and when: kept with a cached response to audit each hit."""

    action: str
    clinic_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    patient_id: uuid.UUID | None


_captured: contextvars.ContextVar[list[ReadRecord] | None] = contextvars.ContextVar(
    "captured_reads", default=None
)


@contextlib.contextmanager
def capture_reads() -> Iterator[list[ReadRecord]]:
    """Collect the reads recorded while active (the response cache keeps them with the answer)."""
    reads: list[ReadRecord] = []
    token = _captured.set(reads)
    try:
        yield reads
    finally:
        _captured.reset(token)


def record_reads_again(
    database: Database,
    reads: list[ReadRecord],
    *,
    actor_user_id: uuid.UUID | None,
    request_id: str | None,
    ip: str | None,
) -> None:
    """Record `reads` for a request that was answered from the response cache."""
    writer = read_writer(database)
    for read in reads:
        writer.add(_Read(*read, actor_user_id=actor_user_id, request_id=request_id, ip=ip))


class ReadAuditWriter:
    """Queues read events in memory and writes them in batches, one transaction per flush."""

    def __init__(self, database: Database, interval: float = 1.0, max_pending: int = 5000) -> None:
        self.database = database
        self.interval = interval
        self.max_pending = max_pending
        self._pending: dict[_Read, Any] = {}  # insertion-ordered; duplicates of a request collapse
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def add(self, read: _Read) -> None:
        self._pending.setdefault(read, utcnow())
        if len(self._pending) >= self.max_pending:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        async with self._lock:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            # Plain rows, chained and inserted in bulk: a dashboard queues 50 reads, and ORM
            # objects cost ~4x more per row than the hashing and the INSERT together.
            rows = [
                {
                    "id": uuid.uuid4(),
                    "clinic_id": read.clinic_id,
                    "actor_user_id": read.actor_user_id,
                    "action": read.action,
                    "target_type": read.target_type,
                    "target_id": str(read.target_id),
                    "outcome": "success",
                    "details": {},
                    "request_id": read.request_id,
                    "ip": read.ip,
                    "created_at": at,
                    "patient_id": read.patient_id,
                }
                for read, at in batch.items()
            ]
            try:
                async with self.database.transaction(TenantScope.cross_clinic()) as db:
                    await db.run_sync(audit_chain.append_rows, rows)
            except Exception:
                # Keep them for the next flush rather than lose the access trail.
                self._pending = {**batch, **self._pending}
                raise
            return len(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing read-audit events failed; will retry")

    def start(self) -> None:
        if self._task is None:
            # A fresh context: the writer must not inherit one request's context variables.
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


_writers: weakref.WeakKeyDictionary[Database, ReadAuditWriter] = weakref.WeakKeyDictionary()


def read_writer(database: Database, interval: float = 1.0) -> ReadAuditWriter:
    """The read-audit writer of `database` (one per database object)."""
    writer = _writers.get(database)
    if writer is None:
        writer = _writers[database] = ReadAuditWriter(database, interval)
    return writer


def record_read(
    ctx: ServiceContext,
    action: str,
    *,
    clinic_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    patient_id: uuid.UUID | None = None,
) -> None:
    """Queue a read of a patient record or of notes (written within AUDIT_FLUSH_SECONDS)."""
    principal = ctx.principal
    read = ReadRecord(
        action,
        clinic_id,
        target_type,
        target_id,
        patient_id if patient_id is not None else (target_id if target_type == "patient" else None),
    )
    captured = _captured.get()
    if captured is not None:
        captured.append(read)
    read_writer(ctx.database).add(
        _Read(
            *read,
            actor_user_id=principal.user_id if principal else None,
            request_id=ctx.request_id,
            ip=ctx.ip,
        )
    )


# --- the log, as clinic and platform admins query it -------------------------------------------


@dataclass
class AuditFilter:
    clinic_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    action: str | None = None
    action_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    ctx: ServiceContext, flt: AuditFilter, *, first: int, after: str | None
) -> Page[AuditEvent]:
    """Newest first, keyset-paginated. Clinic admins see their clinic; platform admins any."""
    principal = ctx.require_principal()
    require(principal, Action.AUDIT_READ)
    check_page_size(first, ctx.settings.max_page_size)
    E = AuditEvent
    query = select(E)
    if principal.is_platform_admin:
        if flt.clinic_id is not None:
            query = query.where(E.clinic_id == flt.clinic_id)
    else:
        if flt.clinic_id is not None and flt.clinic_id != principal.clinic_id:
            raise Forbidden("You are not allowed to do that.")
        query = query.where(E.clinic_id == principal.clinic_id)
    if flt.actor_user_id is not None:
        query = query.where(E.actor_user_id == flt.actor_user_id)
    if flt.patient_id is not None:
        query = query.where(E.patient_id == flt.patient_id)
    if flt.action:
        query = query.where(E.action == flt.action)
    if flt.action_prefix:
        query = query.where(E.action.startswith(flt.action_prefix, autoescape=True))
    for value, name in ((flt.since, "from"), (flt.until, "to")):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"`{name}` needs a time zone offset.", field=name)
    if flt.since is not None:
        query = query.where(E.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(E.created_at < flt.until)
    key = tuple_(E.created_at, E.id)
    if after:
        position = decode_cursor(after, 2)
        if not (isinstance(position[0], datetime) and isinstance(position[1], uuid.UUID)):
            raise ValidationFailed("The `after` cursor is not valid for this list.", field="after")
        query = query.where(key < tuple_(*position))
    rows = list(
        await ctx.db.scalars(query.order_by(E.created_at.desc(), E.id.desc()).limit(first + 1))
    )
    items = rows[:first]
    return Page(items, len(rows) > first, [encode_cursor((e.created_at, e.id)) for e in items])
