"""The `santana` command: migrate, seed-demo, create-admin, as an operator runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.db.engine import Database
from gateway.db.models import Clinic, CounselingSession, Patient, Role, User
from gateway.db.tenancy import TenantScope

runner = CliRunner()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("APP_ENV", "development")
    return url


def _counts(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        database = Database(url)
        try:
            async with database.transaction(TenantScope.cross_clinic()) as db:
                out = {}
                for model in (Clinic, User, Patient, CounselingSession):
                    out[model.__tablename__] = (
                        await db.scalar(select(func.count()).select_from(model)) or 0
                    )
                roles = await db.scalars(select(User.role).distinct())
                out["roles"] = len(set(roles))
                return out
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_migrate_then_seed_demo_is_idempotent(sqlite_env: str) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    first = runner.invoke(app, ["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo data loaded" in first.output and "admin@santana.test" in first.output
    counts = _counts(sqlite_env)
    assert counts["clinics"] == 2 and counts["roles"] == len(Role)
    assert 45 <= counts["patients"] <= 60 and counts["counseling_sessions"] > 100
    again = runner.invoke(app, ["seed-demo"])
    assert "already present" in again.output
    assert _counts(sqlite_env) == counts


def test_seed_demo_refuses_production(sqlite_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("JWT_SECRET", "p" * 64)
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "H3Yx1m0Zt1h8q3x0y2wK8bq9cM0m6y3dQ5l7s2v4n1E=")
    result = runner.invoke(app, ["seed-demo"])
    assert result.exit_code == 2
    assert "refusing" in result.output


def test_create_admin_creates_once_and_explains_a_duplicate(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    monkeypatch.setenv("SANTANA_ADMIN_PASSWORD", "operator-password-1")
    ok = runner.invoke(app, ["create-admin", "--email", "Ops@Example.test"])
    assert ok.exit_code == 0, ok.output
    assert "ops@example.test created" in ok.output
    dup = runner.invoke(app, ["create-admin", "--email", "ops@example.test"])
    assert dup.exit_code == 1 and "already exists" in dup.output
    monkeypatch.setenv("SANTANA_ADMIN_PASSWORD", "short")
    weak = runner.invoke(app, ["create-admin", "--email", "other@example.test"])
    assert weak.exit_code == 1 and "at least 10" in weak.output
    assert _counts(sqlite_env)["users"] == 1
