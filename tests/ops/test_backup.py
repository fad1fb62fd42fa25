"""`santana backup` and `santana restore --verify`: the monthly restore test as one command."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.db.migrate import head_revision
from gateway.ops.backup import BackupError, backup, latest_backup, restore_verify
from gateway.ops.production import backup_check
from gateway.settings import Settings
from tests.factories import World

runner = CliRunner()


async def test_backup_then_verify_restores_every_row(
    world: World, settings: Settings, owner_url: str, tmp_path: Path
) -> None:
    s = settings.model_copy(
        update={"backup_dir": str(tmp_path / "backups"), "migration_database_url": owner_url}
    )
    assert not backup_check(s).ok
    path = await backup(s)
    assert (
        path.parent == tmp_path / "backups"
        and path.name.startswith("santana-")
        and path.stat().st_size > 0
    )
    assert latest_backup(tmp_path / "backups") == path
    assert backup_check(s).ok

    report = await restore_verify(s, path)
    assert report.ok, report.problems
    assert report.revision == head_revision()
    assert report.row_counts["clinics"] == 2
    assert report.row_counts["patients"] == 6  # every clinic's rows, despite row-level security
    assert report.row_counts["counseling_sessions"] == 4
    assert report.row_counts["users"] == 9


async def test_verify_rejects_a_damaged_backup(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "santana-20250101T000000Z.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    report = await restore_verify(settings, bad)
    assert not report.ok and "not a readable SQLite backup" in report.problems[0]
    with pytest.raises(BackupError):
        await restore_verify(settings, tmp_path / "missing.sqlite3")


def test_cli_backup_and_restore_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/live.db")
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("APP_ENV", "development")
    assert runner.invoke(cli, ["backup"]).exit_code == 1  # nothing to back up yet: says so
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["seed-demo"]).exit_code == 0
    made = runner.invoke(cli, ["backup"])
    assert made.exit_code == 0, made.output
    path = latest_backup(tmp_path / "backups")
    assert path is not None and str(path) in made.output

    verified = runner.invoke(cli, ["restore", "--verify", str(path)])
    assert verified.exit_code == 0, verified.output
    assert "backup verified" in verified.output and "clinics" in verified.output
    assert runner.invoke(cli, ["restore", str(path)]).exit_code == 2

    old = tmp_path / "santana-old.sqlite3"
    old.write_bytes(path.read_bytes())
    asyncio.run(_stamp(old, "0001"))
    stale = runner.invoke(cli, ["restore", "--verify", str(old)])
    assert stale.exit_code == 1 and "santana migrate" in stale.output


def test_cli_plan_fee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/live.db")
    monkeypatch.setenv("APP_ENV", "development")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["plan-fee", "no-such-clinic", "100"]).exit_code == 1


async def _stamp(path: Path, revision: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.commit()
    conn.close()
