"""`santana backup` and `santana restore --verify`: daily backups and the monthly restore test.

PostgreSQL is dumped with pg_dump (custom format) as the migration (owner) role;
SQLite is copied with its online backup API, so both are consistent while the
gateway keeps serving. A verify restores the file into a scratch database and
checks it: integrity, the migration revision, every expected table, row counts.
Passwords go to pg_dump through the environment, never on its command line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url

from gateway.db.engine import Database
from gateway.db.models import Base
from gateway.db.tenancy import TenantScope
from gateway.settings import Settings

PREFIX = "santana-"
SQLITE_SUFFIX, PG_SUFFIX = ".sqlite3", ".pgdump"


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass
class VerifyReport:
    file: Path
    revision: str | None = None
    expected_revision: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def latest_backup(directory: Path) -> Path | None:
    files = [p for p in directory.glob(f"{PREFIX}*") if p.suffix in (SQLITE_SUFFIX, PG_SUFFIX)]
    return max(files, key=lambda p: p.stat().st_mtime, default=None)


def _target(directory: Path, suffix: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{PREFIX}{stamp}{suffix}"
    n = 1
    while path.exists():  # two backups in one second keep both
        path, n = directory / f"{PREFIX}{stamp}-{n}{suffix}", n + 1
    return path


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("DATABASE_URL names no SQLite file to back up")
    return Path(database)


def _libpq_env(url: URL, database: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PGHOST": url.host or "localhost",
            "PGPORT": str(url.port or 5432),
            "PGDATABASE": database or url.database or "postgres",
        }
    )
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = ssl
    # RLS policies admit the platform scope: the dump then holds every clinic's rows.
    env["PGOPTIONS"] = "-c app.scope=platform"
    return env


async def _run(*argv: str, env: dict[str, str]) -> None:
    binary = shutil.which(argv[0])
    if binary is None:
        raise BackupError(
            f"{argv[0]} not found: install the PostgreSQL client tools (postgresql-client)"
        )
    proc = await asyncio.create_subprocess_exec(
        binary,
        *argv[1:],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {err.decode(errors='replace').strip()[:500]}")


async def backup(settings: Settings) -> Path:
    """Write one timestamped backup into BACKUP_DIR and return its path."""
    directory = Path(settings.backup_dir)
    if settings.is_postgres:
        target = _target(directory, PG_SUFFIX)
        partial = target.with_suffix(".partial")
        url = make_url(settings.migrations_url)
        try:
            await _run(
                "pg_dump",
                "--format=custom",
                "--enable-row-security",
                f"--file={partial}",
                env=_libpq_env(url),
            )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.rename(target)  # only complete files ever carry the backup name
        return target
    source = sqlite_path(settings.database_url)
    if not source.exists():
        raise BackupError(f"{source} does not exist: run `santana migrate` first")
    target = _target(directory, SQLITE_SUFFIX)
    await asyncio.to_thread(_sqlite_copy, source, target)
    return target


def _sqlite_copy(source: Path, target: Path) -> None:
    partial = target.with_suffix(".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    partial.rename(target)


async def restore_verify(
    settings: Settings, file: Path, admin_url: str | None = None
) -> VerifyReport:
    """Restore `file` into a scratch database, check it, drop the scratch database."""
    from gateway.ops.readiness import expected_revision

    if not await asyncio.to_thread(file.is_file):
        raise BackupError(f"{file} is not a file")
    report = VerifyReport(file=file, expected_revision=expected_revision())
    if file.suffix == PG_SUFFIX:
        await _verify_postgres(settings, file, report, admin_url)
    else:
        with tempfile.TemporaryDirectory(prefix="santana-verify-") as scratch:
            restored = Path(scratch) / "restored.db"
            await asyncio.to_thread(_sqlite_restore, file, restored, report)
            if report.ok:
                await _inspect(f"sqlite+aiosqlite:///{restored}", report)
    return report


def _sqlite_restore(file: Path, restored: Path, report: VerifyReport) -> None:
    try:
        src = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(restored)
            src.backup(dst)
            result = dst.execute("PRAGMA integrity_check").fetchone()
            dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"not a readable SQLite backup: {exc}")
        return
    if not result or result[0] != "ok":
        report.problems.append(f"integrity check failed: {result[0] if result else 'no answer'}")


async def _verify_postgres(
    settings: Settings, file: Path, report: VerifyReport, admin_url: str | None
) -> None:
    url = make_url(admin_url or settings.migrations_url)
    if not url.drivername.startswith("postgresql"):
        raise BackupError(
            "a PostgreSQL backup needs a PostgreSQL server: set DATABASE_URL or pass --admin-url"
        )
    scratch = f"santana_verify_{int(time.time())}_{uuid.uuid4().hex[:6]}"
    admin = Database(url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False))
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        try:
            await _run(
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                f"--dbname={scratch}",
                str(file),
                env=_libpq_env(url, scratch),
            )
            scratch_url = url.set(drivername="postgresql+asyncpg", database=scratch)
            await _inspect(scratch_url.render_as_string(hide_password=False), report)
        except BackupError as exc:
            report.problems.append(str(exc))
        finally:
            async with admin.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _inspect(url: str, report: VerifyReport) -> None:
    database = Database(url)
    try:
        async with database.transaction(TenantScope.cross_clinic()) as db:
            conn = await db.connection()
            present = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            if "alembic_version" in present:
                report.revision = await db.scalar(text("SELECT version_num FROM alembic_version"))
            if report.revision != report.expected_revision:
                report.problems.append(
                    f"backup is at migration {report.revision or 'none'}, this code expects "
                    f"{report.expected_revision} (run `santana migrate` after a real restore)"
                )
            missing = sorted(set(Base.metadata.tables) - present)
            if missing:
                report.problems.append("missing tables: " + ", ".join(missing))
            for name in sorted(present - {"alembic_version"}):
                report.row_counts[name] = (
                    await db.scalar(select(func.count()).select_from(table(name))) or 0
                )
    finally:
        await database.dispose()
