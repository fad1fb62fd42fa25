"""Each clinic's data version: bumped in the same transaction as any write to its data.

The response cache keys every entry by the clinic's `data_version`, read from the
database before serving. Because the bump commits atomically with the write, a
change committed by any process or instance is seen by every cache at once: no
invalidation message can be lost or arrive late.

Writes are noticed at the ORM layer (flushed objects, and INSERT/UPDATE/DELETE
statements run through a session), so no service has to remember to invalidate.
Bookkeeping tables that cached reads never show are left out, or every audited
read would invalidate the cache it was served from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import ORMExecuteState, Session

from gateway.db.models import Clinic
from gateway.db.tenancy import SCOPE_KEY, TenantScope

# Bookkeeping, written constantly and never part of a cacheable read (the audit log,
# outbox and login state are read through root fields the cache does not serve).
NEUTRAL_TABLES = frozenset(
    {
        "audit_events",
        "audit_chain_heads",
        "outbox",
        "webhook_events",
        "refresh_tokens",
        "user_tokens",
        "user_recovery_codes",
    }
)

WRITTEN_KEY = "santana.written_clinics"
EVERY_CLINIC = "*"


def _note(session: Session, clinic_id: Any) -> None:
    session.info.setdefault(WRITTEN_KEY, set()).add(clinic_id)


def _table_name(obj: Any) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return getattr(table, "name", None)


@event.listens_for(Session, "after_flush")
def _note_flushed(session: Session, _flush_context: Any) -> None:
    # In after_flush the new/dirty/deleted collections still hold what was just written.
    for obj in (*session.new, *session.dirty, *session.deleted):
        if _table_name(obj) in NEUTRAL_TABLES:
            continue
        if isinstance(obj, Clinic):
            if session.is_modified(obj) or obj in session.new or obj in session.deleted:
                _note(session, obj.id)
            continue
        clinic_id = getattr(obj, "clinic_id", None)
        if clinic_id is not None:
            _note(session, clinic_id)
        elif _table_name(obj) is not None:
            # A platform-level row (e.g. a platform admin account): not cached, but be safe.
            _note(session, EVERY_CLINIC)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in NEUTRAL_TABLES:
        return
    if _is_version_bump(state):
        return
    scope: TenantScope = state.session.info.get(SCOPE_KEY, TenantScope.nobody())
    _note(state.session, scope.clinic_id if scope.clinic_id is not None else EVERY_CLINIC)


def _is_version_bump(state: ORMExecuteState) -> bool:
    return bool(state.execution_options.get("santana_version_bump"))


@event.listens_for(Session, "before_commit")
def _bump_versions(session: Session) -> None:
    # before_commit runs before the final flush: flush now so its writes are noticed too.
    if session.new or session.dirty or session.deleted:
        session.flush()
    written = session.info.pop(WRITTEN_KEY, None)
    if not written:
        return
    bump = update(Clinic).values(data_version=Clinic.data_version + 1)
    if EVERY_CLINIC not in written:
        bump = bump.where(Clinic.id.in_(sorted(written, key=str)))
    session.execute(bump.execution_options(synchronize_session=False, santana_version_bump=True))


@event.listens_for(Session, "after_rollback")
def _forget_writes(session: Session) -> None:
    session.info.pop(WRITTEN_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_writes_soft(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(WRITTEN_KEY, None)
