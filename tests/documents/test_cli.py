"""`santana documents purge`, as an operator runs it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from gateway.cli import app
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.documents.models import PatientDocument
from schema.ids import from_global_id
from tests.documents.conftest import DELETE, Docs


async def test_purge_command_removes_what_retention_released(
    docs: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = docs.world.a
    kept = await docs.uploaded(a.counselor, a.own_patient)
    deleted = await docs.uploaded(a.counselor, a.own_patient)
    await docs.gql.data(DELETE, {"id": deleted}, user=a.counselor)
    monkeypatch.setenv("DATABASE_URL", docs.settings.database_url)
    monkeypatch.setenv("DOCUMENT_LOCAL_DIR", docs.settings.document_local_dir)
    runner = CliRunner()

    # Within the retention period nothing goes.
    result = await asyncio.to_thread(runner.invoke, app, ["documents", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 0 documents" in result.output
    assert len(docs.stored_files()) == 2

    monkeypatch.setenv(
        "DOCUMENT_RETENTION_DAYS", "0"
    )  # the operator shortened it; rows keep theirs
    result = await asyncio.to_thread(runner.invoke, app, ["documents", "purge"])
    assert "purged 0 documents" in result.output

    async with docs.database.transaction(TenantScope.clinic(a.clinic.id)) as db:
        await db.execute(
            update(PatientDocument)
            .where(PatientDocument.purge_after.is_not(None))
            .values(purge_after=utcnow() - timedelta(seconds=1))  # the retention has passed
        )
    result = await asyncio.to_thread(runner.invoke, app, ["documents", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 1 documents, 0 failed" in result.output
    assert len(docs.stored_files()) == 1
    [row] = await docs.rows(a.clinic.id)
    assert row.id == from_global_id(kept, "PatientDocument")  # the kept one is still there
