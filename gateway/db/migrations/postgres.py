"""PostgreSQL-only migration steps: row-level security and the app role's grants.

Both are no-ops on SQLite, so one migration history serves both databases.
"""

from __future__ import annotations

import re

from alembic import context, op

from gateway.db.tenancy import rls_policy_sql

_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def enable_tenant_rls(tables: dict[str, str]) -> None:
    """FORCE RLS on each table, fenced on the given clinic column."""
    if not _is_postgres():
        return
    for table, column in tables.items():
        for statement in rls_policy_sql(table, column):
            op.execute(statement)


def grant_app_role() -> None:
    """Let DATABASE_APP_ROLE read and write every table, without owning any."""
    role = context.config.attributes.get("app_role")
    if not role or not _is_postgres():
        return
    if not _ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE {role!r} is not a plain role name")
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    # Tables added by later migrations are covered too.
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
    )
