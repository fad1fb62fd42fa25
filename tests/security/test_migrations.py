"""Rollback: every migration downgrades; the whole chain walks base -> head -> base -> head
on SQLite and on PostgreSQL, and audit rows written before 0003 are chained by it."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db.engine import Database
from gateway.db.migrate import alembic_config, upgrade
from gateway.services.audit_chain import verify_chains
from tests.conftest import PG_APP_ROLE, _pg_admin, _pg_url, _postgres_available


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _seed_pre_chain_audit_rows(url: str) -> None:
    """Audit rows as the 0002 schema had them (no chain columns yet)."""

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    await conn.execute(text("SELECT set_config('app.scope', 'platform', true)"))
                clinic = uuid.uuid4()
                for i, (cid, action) in enumerate(
                    [(clinic, "a.one"), (clinic, "a.two"), (None, "p.one")]
                ):
                    await conn.execute(
                        text(
                            "INSERT INTO audit_events (id, clinic_id, action, outcome, details, created_at)"
                            " VALUES (:id, :clinic, :action, 'success', '{}', :at)"
                        ),
                        {
                            "at": f"2026-01-0{i + 1} 10:00:00.000000"
                            if engine.dialect.name == "sqlite"
                            else datetime(2026, 1, i + 1, 10, tzinfo=UTC),
                            "id": uuid.uuid4().hex
                            if engine.dialect.name == "sqlite"
                            else uuid.uuid4(),
                            "clinic": (cid.hex if engine.dialect.name == "sqlite" else cid)
                            if cid
                            else None,
                            "action": action,
                        },
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


def _verify(url: str) -> list[object]:
    async def run() -> list[object]:
        database = Database(url)
        try:
            return await verify_chains(database)  # type: ignore[return-value]
        finally:
            await database.dispose()

    return asyncio.run(run())


def _walk(url: str, app_role: str | None = None, app_url: str | None = None) -> None:
    cfg = alembic_config(url, app_role)
    revisions = [r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()][::-1]
    assert revisions[:3] == ["0001", "0002", "0003"]
    upgrade(url, app_role)
    head_tables = _tables(url)
    assert {"audit_chain_heads", "user_recovery_codes", "audit_events"} <= head_tables
    command.downgrade(cfg, "base")
    assert _tables(url) <= {"alembic_version"}
    # Up one step at a time, then down one at a time: each downgrade undoes exactly its upgrade.
    seen = []
    for rev in revisions:
        command.upgrade(cfg, rev)
        seen.append(_tables(url))
        if rev == "0002":
            _seed_pre_chain_audit_rows(url)
    # The rows written under 0002 were chained by 0003, and verify (as the app role on PostgreSQL).
    reports = _verify(app_url or url)
    assert sorted(r.events for r in reports) == [1, 2] and all(r.ok for r in reports)  # type: ignore[attr-defined]
    for rev, tables in zip(reversed(revisions[:-1]), reversed(seen[:-1]), strict=True):
        command.downgrade(cfg, rev)
        assert _tables(url) == tables, f"downgrade to {rev} left a different schema"
    command.downgrade(cfg, "base")
    upgrade(url, app_role)
    assert _tables(url) == head_tables


def test_whole_chain_up_and_down_on_sqlite(tmp_path: Path) -> None:
    _walk(f"sqlite+aiosqlite:///{tmp_path}/walk.db")


def test_whole_chain_up_and_down_on_postgres() -> None:
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    name = f"santana_walk_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    try:
        _walk(_pg_url(name), app_role=PG_APP_ROLE, app_url=_pg_url(name, PG_APP_ROLE))
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
