"""`santana plugins list`, `worker --once` and `rotate-keys`, as an operator runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.migrate import upgrade
from gateway.db.models import Clinic
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import Integration
from gateway.settings import DEV_ENCRYPTION_KEY

runner = CliRunner()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("APP_ENV", "development")
    upgrade(url)
    return url


def test_plugins_list_shows_installed_and_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["plugins", "list"])
    assert result.exit_code == 0, result.output
    assert "ok       email    example_mail" in result.output
    monkeypatch.setenv("PLUGINS_DENY", "example_mail")
    result = runner.invoke(app, ["plugins", "list"])
    assert "example_mail" in result.output and "skipped" in result.output


def test_worker_once_on_an_empty_queue(sqlite_env: str) -> None:
    result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "delivered 0, retrying 0, dead 0" in result.output


def test_rotate_keys_command(sqlite_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def seed() -> None:
        database = Database(sqlite_env)
        async with database.transaction(TenantScope.cross_clinic()) as db:
            clinic = Clinic(name="C", slug="c", timezone="UTC", currency="USD")
            db.add(clinic)
            await db.flush()
            db.add(
                Integration(
                    clinic_id=clinic.id,
                    plugin="example_mail",
                    kind="email",
                    config={},
                    secrets_encrypted=DataCipher([DEV_ENCRYPTION_KEY]).encrypt(
                        '{"api_token": "t"}'
                    ),
                )
            )
        await database.dispose()

    asyncio.run(seed())
    new_key = DataCipher.generate_key()
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", f"{new_key},{DEV_ENCRYPTION_KEY}")
    result = runner.invoke(app, ["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "integrations.secrets_encrypted" in result.output and "1 re-encrypted" in result.output

    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "this-is-not-a-key")
    assert runner.invoke(app, ["rotate-keys"]).exit_code != 0
