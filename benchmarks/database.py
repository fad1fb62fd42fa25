"""The benchmark's own PostgreSQL database: created fresh, migrated to head, filled by COPY."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import asyncpg

from benchmarks.config import APP_ROLE, PG_DATABASE, Scale, pg_url
from benchmarks.datagen import (
    CLINIC_COLUMNS,
    PATIENT_COLUMNS,
    SESSION_COLUMNS,
    USER_COLUMNS,
    DataSet,
    generate,
)
from gateway.auth.passwords import hash_password
from gateway.crypto import DataCipher
from gateway.db.migrate import upgrade

TABLES = (
    ("clinics", CLINIC_COLUMNS, "clinics"),
    ("users", USER_COLUMNS, "users"),
    ("patients", PATIENT_COLUMNS, "patients"),
    ("counseling_sessions", SESSION_COLUMNS, "sessions"),
)


async def recreate(database: str = PG_DATABASE) -> None:
    """Drop and create `database`, and make sure the non-superuser app role exists."""
    admin = await asyncpg.connect(pg_url(database="postgres"))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
            await admin.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


def migrate(database: str = PG_DATABASE) -> None:
    upgrade(pg_url(database=database, driver="postgresql+asyncpg"), app_role=APP_ROLE)


async def copy(url: str, data: DataSet) -> dict[str, int]:
    """COPY every generated row as the table owner (a superuser: RLS does not apply)."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    counts: dict[str, int] = {}
    try:
        async with conn.transaction():
            for table, columns, attr in TABLES:
                rows = getattr(data, attr)
                await conn.copy_records_to_table(table, records=rows, columns=list(columns))
                counts[table] = len(rows)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return counts


async def build(
    scale: Scale, anchor: date, cipher: DataCipher, password: str
) -> tuple[DataSet, dict[str, float]]:
    """Fresh database with the full data set; returns it and how long each step took."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    await recreate()
    await asyncio.to_thread(migrate)  # alembic runs its own event loop
    timings["create+migrate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Hashed once: argon2 is deliberately slow, and every account shares the password.
    data = generate(scale, anchor, hash_password(password), cipher.encrypt)
    timings["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    await copy(pg_url(), data)
    timings["copy+analyze"] = time.perf_counter() - t0
    return data, timings
