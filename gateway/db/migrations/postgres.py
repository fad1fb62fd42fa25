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


# The app may add rows to these but never change or remove one (tamper-evident audit log).
APPEND_ONLY_TABLES = ("audit_events",)


def app_role() -> str | None:
    role = context.config.attributes.get("app_role")
    if role and not _ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE {role!r} is not a plain role name")
    return role or None


def grant_app_role() -> None:
    """Let DATABASE_APP_ROLE read and write every table, without owning any.

    Append-only tables keep SELECT and INSERT only, whichever migration grants last.
    """
    role = app_role()
    if not role or not _is_postgres():
        return
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    # Tables added by later migrations are covered too.
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
    )
    for table in APPEND_ONLY_TABLES:  # constants of ours; `role` is checked against _ROLE_NAME
        op.execute(
            f"DO $$ BEGIN IF to_regclass('public.{table}') IS NOT NULL AND EXISTS "
            f"(SELECT 1 FROM pg_attribute WHERE attrelid = 'public.{table}'::regclass AND attname = 'row_hash') "
            f'THEN REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM "{role}"; END IF; END $$'
        )
