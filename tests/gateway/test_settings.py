"""Settings: safe development defaults, and production refusing unsafe ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.crypto import DataCipher
from gateway.settings import load_settings

STRONG_SECRET = "s" * 64


def test_defaults_let_a_fresh_checkout_run_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "JWT_SECRET", "APP_ENV", "DATA_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.graphiql_enabled


def test_production_refuses_a_short_or_default_jwt_secret() -> None:
    key = DataCipher.generate_key()
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        load_settings(app_env="production", data_encryption_keys=key)
    with pytest.raises(ValidationError, match="at least 64"):
        load_settings(app_env="production", jwt_secret="x" * 63, data_encryption_keys=key)
    settings = load_settings(
        app_env="production", jwt_secret=STRONG_SECRET, data_encryption_keys=key
    )
    assert not settings.graphiql_enabled


def test_production_refuses_the_development_encryption_key() -> None:
    with pytest.raises(ValidationError, match="DATA_ENCRYPTION_KEYS"):
        load_settings(app_env="production", jwt_secret=STRONG_SECRET)


def test_operator_style_database_urls_get_the_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db.internal:5432/santana")
    assert load_settings().database_url == "postgresql+asyncpg://app@db.internal:5432/santana"


def test_key_rotation_old_values_still_decrypt_and_rotate_to_the_new_key() -> None:
    old, new = DataCipher.generate_key(), DataCipher.generate_key()
    token = DataCipher([old]).encrypt("session notes")
    both = DataCipher([new, old])
    assert both.decrypt(token) == "session notes"
    assert DataCipher([new]).decrypt(both.rotate(token)) == "session notes"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        DataCipher([new]).decrypt(token)


def test_readme_documents_every_setting() -> None:
    """An operator reading the README's configuration table finds every variable."""
    from pathlib import Path

    from gateway.settings import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        name.upper() for name in Settings.model_fields if f"| `{name.upper()}` |" not in readme
    ]
    assert missing == [], f"README configuration table lacks {missing}"
