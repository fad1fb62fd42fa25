"""What /admin-debug shows, and its retry actions.

Failed logins come from the audit log; dead letters from the integration
layer's outbox table and open circuits from its breakers, both read
defensively (they are shown when that layer is installed, and skipped before).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, func, inspect, select, update

from gateway.db.engine import Database
from gateway.db.models import AuditEvent, Clinic, User
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow

FAILED_LOGIN_HOURS = 24
DEAD_LETTER_LIMIT = 50


@dataclass(frozen=True)
class FailedLogins:
    by_account: list[tuple[str, int, datetime]]  # (email or "unknown account", failures, last)
    by_ip: list[tuple[str, int, datetime]]


@dataclass(frozen=True)
class Circuit:
    clinic_id: uuid.UUID
    clinic: str
    plugin: str
    state: str
    failures: int
    retry_in_seconds: float
    last_error_code: str | None


async def failed_logins(database: Database, hours: int = FAILED_LOGIN_HOURS) -> FailedLogins:
    since = utcnow() - timedelta(hours=hours)
    reason = func.coalesce(AuditEvent.details["reason"].as_string(), "")
    failed = (
        (AuditEvent.action == "auth.login")
        & (AuditEvent.outcome != "success")
        & (AuditEvent.created_at >= since)
        & ~reason.like("%_needed")  # a 2FA login's first step is not a failure
    )
    async with database.transaction(TenantScope.cross_clinic()) as db:
        accounts = await db.execute(
            select(User.email, func.count(), func.max(AuditEvent.created_at))
            .select_from(AuditEvent)
            .outerjoin(User, User.id == AuditEvent.actor_user_id)
            .where(failed)
            .group_by(User.email)
            .order_by(func.count().desc())
            .limit(20)
        )
        by_account = [(email or "unknown account", n, last) for email, n, last in accounts]
        ips = await db.execute(
            select(AuditEvent.ip, func.count(), func.max(AuditEvent.created_at))
            .where(failed)
            .group_by(AuditEvent.ip)
            .order_by(func.count().desc())
            .limit(20)
        )
        by_ip = [(ip or "unknown", n, last) for ip, n, last in ips]
    return FailedLogins(by_account, by_ip)


async def audit_for_request(database: Database, request_id: str) -> list[dict[str, Any]]:
    async with database.transaction(TenantScope.cross_clinic()) as db:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.request_id == request_id)
            .order_by(AuditEvent.created_at)
            .limit(50)
        )
        return [
            {"at": r.created_at, "action": r.action, "outcome": r.outcome, "target": r.target_type}
            for r in rows
        ]


async def _clinic_names(database: Database) -> dict[uuid.UUID, str]:
    async with database.transaction(TenantScope.cross_clinic()) as db:
        return {cid: slug for cid, slug in await db.execute(select(Clinic.id, Clinic.slug))}


async def _outbox(db: Any) -> Table | None:
    conn = await db.connection()

    def reflect(sync_conn: Any) -> Table | None:
        if "outbox" not in inspect(sync_conn).get_table_names():
            return None
        return Table("outbox", MetaData(), autoload_with=sync_conn)

    table = await conn.run_sync(reflect)
    wanted = {
        "clinic_id",
        "id",
        "status",
        "kind",
        "hook",
        "attempts",
        "last_error",
        "next_attempt_at",
    }
    return table if table is not None and wanted <= set(table.c.keys()) else None


async def dead_letters(database: Database) -> list[dict[str, Any]] | None:
    """Dead outbox rows, newest first; None when there is no outbox (integration layer absent)."""
    names = await _clinic_names(database)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        outbox = await _outbox(db)
        if outbox is None:
            return None
        rows = await db.execute(
            select(
                outbox.c.clinic_id,
                outbox.c.id,
                outbox.c.kind,
                outbox.c.hook,
                outbox.c.attempts,
                outbox.c.last_error,
                outbox.c.next_attempt_at,
            )
            .where(outbox.c.status == "dead")
            .order_by(outbox.c.next_attempt_at.desc())
            .limit(DEAD_LETTER_LIMIT)
        )
        return [
            {
                "clinic_id": str(c),
                "clinic": names.get(_uuid(c) or uuid.UUID(int=0), str(c)[:8]),
                "id": str(i),
                "kind": k,
                "hook": h,
                "attempts": a,
                "last_error": e,
                "at": at,
            }
            for c, i, k, h, a, e, at in rows
        ]


async def retry_dead_letter(
    database: Database, clinic_id: uuid.UUID, message_id: uuid.UUID
) -> bool:
    """Put a dead message back in the queue for the outbox worker; False if it is not dead."""
    async with database.transaction(TenantScope.cross_clinic()) as db:
        outbox = await _outbox(db)
        if outbox is None:
            return False
        values: dict[str, Any] = {"status": "pending", "attempts": 0, "next_attempt_at": utcnow()}
        if (await db.connection()).dialect.name == "sqlite":
            values["next_attempt_at"] = values["next_attempt_at"].replace(tzinfo=None)
        result = await db.execute(
            update(outbox)
            .where(
                outbox.c.clinic_id == clinic_id,
                outbox.c.id == message_id,
                outbox.c.status == "dead",
            )
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def find_breakers(app_state: Any) -> Any:
    """The integration layer's circuit breakers, wherever it keeps its hub on app.state."""
    for value in list(getattr(app_state, "_state", {}).values()):
        breakers = getattr(value, "breakers", None)
        if breakers is not None and hasattr(breakers, "reset"):
            return breakers
    return None


async def open_circuits(database: Database, app_state: Any) -> list[Circuit] | None:
    breakers = find_breakers(app_state)
    if breakers is None:
        return None
    names = await _clinic_names(database)
    out = []
    for (clinic_id, plugin), breaker in list(getattr(breakers, "_breakers", {}).items()):
        if breaker.state != "closed":
            out.append(
                Circuit(
                    clinic_id,
                    names.get(clinic_id, str(clinic_id)[:8]),
                    plugin,
                    breaker.state,
                    breaker.failures,
                    round(breaker.retry_in(), 1),
                    breaker.last_error_code,
                )
            )
    return out


def close_circuit(app_state: Any, clinic_id: uuid.UUID, plugin: str) -> bool:
    """Close a circuit so the next call goes out (the operator fixed the provider side)."""
    breakers = find_breakers(app_state)
    if breakers is None or breakers.peek(clinic_id, plugin) is None:
        return False
    breakers.reset(clinic_id, plugin)
    return True
