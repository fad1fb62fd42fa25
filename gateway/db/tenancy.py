"""Tenant scope of a database session, and the PostgreSQL settings RLS reads.

Every session carries a `TenantScope`. At the start of each transaction the scope
is written with `set_config(..., true)` (transaction-local), and the row-level
security policies compare each row's clinic with it. A session with no clinic and
no platform scope sees no tenant rows at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

SCOPE_KEY = "tenant_scope"


@dataclass(frozen=True)
class TenantScope:
    """Which rows a session may touch: one clinic's, or (explicitly) every clinic's."""

    clinic_id: uuid.UUID | None = None
    platform: bool = False

    @classmethod
    def clinic(cls, clinic_id: uuid.UUID) -> TenantScope:
        return cls(clinic_id=clinic_id)

    @classmethod
    def cross_clinic(cls) -> TenantScope:
        """Platform-level work: operator actions, login lookups, background jobs."""
        return cls(platform=True)

    @classmethod
    def nobody(cls) -> TenantScope:
        return cls()


_SET_SCOPE = text(
    "SELECT set_config('app.clinic_id', :clinic_id, true), set_config('app.scope', :scope, true)"
)


@event.listens_for(Session, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    scope: TenantScope = session.info.get(SCOPE_KEY, TenantScope.nobody())
    connection.execute(
        _SET_SCOPE,
        {
            "clinic_id": str(scope.clinic_id) if scope.clinic_id else "",
            "scope": "platform" if scope.platform else "tenant",
        },
    )


def rls_policy_sql(table: str, column: str) -> list[str]:
    """DDL that fences `table` to the transaction's clinic (used by migrations)."""
    check = (
        f"({column} = NULLIF(current_setting('app.clinic_id', true), '')::uuid"
        " OR current_setting('app.scope', true) = 'platform')"
    )
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING {check} WITH CHECK {check}",
    ]
