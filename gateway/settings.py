"""One typed settings object, read from the environment.

Every setting has a default that lets `make run` work on a fresh machine; the
defaults that are only safe for development are refused when APP_ENV=production.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only defaults. Production refuses to start with either of them.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-" + "x" * 40
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZGF0YS1rZXktY2hhbmdlLW1lLTAwMDA="  # base64 of 32 bytes

MIN_PRODUCTION_JWT_SECRET = 64


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_env: Literal["development", "test", "production"] = Field(
        "development", description="development | test | production"
    )
    host: str = Field("127.0.0.1", description="Address `santana serve` binds to")
    port: int = Field(8000, description="Port `santana serve` listens on")
    workers: int = Field(1, description="uvicorn worker processes for `santana serve`")
    log_level: str = Field("INFO", description="Python log level")

    database_url: str = Field(
        "sqlite+aiosqlite:///./var/santana.db",
        description="SQLAlchemy async URL the app connects with (postgresql+asyncpg://… in production)",
    )
    migration_database_url: str | None = Field(
        None, description="URL migrations run with (the table owner); defaults to DATABASE_URL"
    )
    database_app_role: str | None = Field(
        None,
        description="PostgreSQL role the app connects as; migrations grant it DML (it must not own the tables)",
    )
    database_pool_size: int = Field(10, description="Connections per process in the pool")
    database_echo: bool = Field(False, description="Log every SQL statement (development only)")

    jwt_secret: str = Field(DEV_JWT_SECRET, description="HMAC key for access tokens (>= 64 chars in production)")
    jwt_access_ttl_seconds: int = Field(900, description="Access-token lifetime")
    refresh_token_ttl_days: int = Field(14, description="Refresh-token lifetime")
    login_max_failures: int = Field(5, description="Failed logins before the account locks")
    login_lockout_minutes: int = Field(15, description="How long a locked account stays locked")

    data_encryption_keys: str = Field(
        DEV_ENCRYPTION_KEY,
        description="Comma-separated Fernet keys for data at rest; the first encrypts, all decrypt (rotation)",
    )

    graphiql: bool | None = Field(None, description="Serve GraphiQL at /graphql (default: on outside production)")
    max_query_depth: int = Field(12, description="Deepest GraphQL selection accepted")
    max_page_size: int = Field(100, description="Largest `first` a connection accepts")

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        # Accept the plain URLs operators already have (postgres://, postgresql://, sqlite://).
        if url is None:
            return None
        for prefix, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if url.startswith(prefix):
                return driver + url[len(prefix) :]
        return url

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.app_env == "production":
            if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < MIN_PRODUCTION_JWT_SECRET:
                raise ValueError(
                    f"JWT_SECRET must be set to at least {MIN_PRODUCTION_JWT_SECRET} characters in production"
                )
            if DEV_ENCRYPTION_KEY in self.encryption_keys:
                raise ValueError("DATA_ENCRYPTION_KEYS must be set in production (the dev key is refused)")
        if not self.encryption_keys:
            raise ValueError("DATA_ENCRYPTION_KEYS must hold at least one key")
        return self

    @cached_property
    def encryption_keys(self) -> list[str]:
        return [k.strip() for k in self.data_encryption_keys.split(",") if k.strip()]

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return (not self.is_production) if self.graphiql is None else self.graphiql

    @property
    def migrations_url(self) -> str:
        return self.migration_database_url or self.database_url

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
