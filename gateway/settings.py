"""One typed settings object, read from the environment.

Every setting has a default that lets `make run` work on a fresh machine; the
defaults that are only safe for development are refused when APP_ENV=production.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
    database_read_url: str | None = Field(
        None,
        description="Read replica URL for read-only GraphQL operations (writes, recent writers: DATABASE_URL)",
    )
    read_your_writes_seconds: float = Field(
        5.0,
        ge=0,
        description="After a write, the same user's reads stay on the primary this long (replica lag cover)",
    )
    subscriptions_per_connection: int = Field(
        10, ge=1, description="Subscriptions one websocket may run at once"
    )
    subscription_connections_per_user: int = Field(
        5, ge=1, description="Open websocket connections one user may hold per gateway process"
    )
    subscription_queue_size: int = Field(
        100,
        ge=1,
        description="Events buffered per subscription before the slow subscriber is closed",
    )
    shutdown_drain_seconds: float = Field(
        20.0, ge=0, description="On SIGTERM, in-flight requests get this long to finish"
    )
    database_echo: bool = Field(False, description="Log every SQL statement (development only)")

    jwt_secret: str = Field(
        DEV_JWT_SECRET, description="HMAC key for access tokens (>= 64 chars in production)"
    )
    jwt_access_ttl_seconds: int = Field(900, description="Access-token lifetime")
    refresh_token_ttl_days: int = Field(14, description="Refresh-token lifetime")
    login_max_failures: int = Field(5, description="Failed logins before the account locks")
    login_lockout_minutes: int = Field(15, description="How long a locked account stays locked")

    data_encryption_keys: str = Field(
        DEV_ENCRYPTION_KEY,
        description="Comma-separated Fernet keys for data at rest; the first encrypts, all decrypt (rotation)",
    )

    graphiql: bool | None = Field(
        None, description="Serve GraphiQL at /graphql (default: on outside production)"
    )
    max_query_depth: int = Field(12, description="Deepest GraphQL selection accepted")
    max_page_size: int = Field(100, description="Largest `first` a connection accepts")

    plugins_allow: str = Field(
        "", description="Comma-separated plugin names to load; empty loads every installed plugin"
    )
    plugins_deny: str = Field(
        "", description="Comma-separated plugin names never to load (wins over allow)"
    )
    integration_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest a plugin call may take"
    )
    integration_circuit_failures: int = Field(
        5, ge=1, description="Consecutive failures that open a (clinic, plugin) circuit"
    )
    integration_circuit_reset_seconds: float = Field(
        30.0, gt=0, description="How long an open circuit waits before one trial call"
    )
    integration_defaults_file: str | None = Field(
        None,
        description="JSON or TOML file of platform-wide plugin defaults: {plugin: {field: value}}",
    )
    webhook_max_body_bytes: int = Field(
        1_000_000, description="Largest inbound webhook body accepted"
    )
    outbox_in_process: bool | None = Field(
        None,
        description="Run the outbox worker inside the web process (default: on in development only)",
    )
    provider_fakes: bool | None = Field(
        None,
        description="Serve the built-in plugins' provider fakes at /_fakes/<plugin> for the demo "
        "(default: on in development only; refused in production)",
    )
    outbox_poll_seconds: float = Field(2.0, gt=0, description="Idle outbox worker polling interval")
    outbox_batch_size: int = Field(20, ge=1, description="Outbox rows claimed per poll")
    outbox_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts before a row is dead-lettered"
    )
    outbox_backoff_base_seconds: float = Field(
        5.0, gt=0, description="First retry delay; doubles per attempt"
    )
    outbox_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay")

    # --- email (gateway/notifications) ----------------------------------------------------
    frontend_url: str = Field(
        "http://127.0.0.1:3000",
        description="Base URL of the clinic front end; set-password links in emails point here",
    )
    password_reset_ttl_minutes: int = Field(
        60, ge=5, le=1440, description="How long a password-reset link stays valid"
    )
    email_reminder_lead_hours: float = Field(
        24.0, gt=0, description="Session reminders go out this long before the session"
    )
    email_reminder_poll_seconds: float = Field(
        60.0, gt=0, description="How often the worker looks for sessions due a reminder"
    )
    email_reminders_in_process: bool | None = Field(
        None,
        description="Run the reminder sweep inside the web process (default: on in development "
        "only; `santana worker` always runs it)",
    )
    dev_mailbox: bool | None = Field(
        None,
        description="Capture emails of clinics without an email plugin in DEV_MAILBOX_DIR "
        "(default: on in development only)",
    )
    dev_mailbox_dir: str = Field(
        "./var/mailbox", description="Where the development mailbox keeps captured emails"
    )

    # --- operations (gateway/ops): health, metrics, alerts, pages, backups ---------------
    app_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of the gateway (https:// in production)",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://…); when set, /api/ready also requires Redis to answer",
    )
    tls_cert_path: str | None = Field(
        None,
        description="PEM certificate served for APP_URL; alerts when it expires within ALERT_TLS_DAYS",
    )
    backup_dir: str = Field(
        "./var/backups", description="Where `santana backup` writes timestamped backups"
    )
    backup_max_age_hours: float = Field(
        26.0, gt=0, description="Newest backup older than this fails the production-readiness check"
    )
    access_log: bool = Field(True, description="Write one JSON access-log line per request")
    metrics_token: str | None = Field(
        None, description="If set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>`"
    )
    slow_operation_ms: float = Field(
        500.0, gt=0, description="Requests slower than this are listed on /admin-debug"
    )
    alert_window_seconds: int = Field(
        300, ge=30, description="Sliding window the alert rules look at"
    )
    alert_evaluation_seconds: float = Field(
        15.0, gt=0, description="How often the alert rules are evaluated"
    )
    alert_min_requests: int = Field(
        20, ge=1, description="Requests a window needs before error-rate and latency rules fire"
    )
    alert_error_rate_warning: float = Field(
        0.01, gt=0, le=1, description="Warning above this error rate"
    )
    alert_error_rate_critical: float = Field(
        0.05, gt=0, le=1, description="Critical above this error rate"
    )
    alert_response_time_warning_ms: float = Field(
        500.0, gt=0, description="Warning above this average latency"
    )
    alert_db_pool_warning: float = Field(
        0.80, gt=0, le=1, description="Warning above this share of the DB pool in use"
    )
    alert_db_pool_critical: float = Field(
        0.90, gt=0, le=1, description="Critical above this share of the DB pool"
    )
    alert_downtime_seconds: float = Field(
        60.0, gt=0, description="Critical when the database has been unreachable this long"
    )
    alert_payment_failures: int = Field(
        1,
        ge=1,
        description="Critical at this many failed payment-provider calls in the window (declines excluded)",
    )
    alert_tls_days: int = Field(
        30, ge=1, description="Warning when the TLS certificate expires within this many days"
    )
    alert_plugins: str = Field(
        "",
        description="Comma-separated plugins whose `alert` hook receives every alert (Slack, pager, …)",
    )

    # --- security (gateway/security): rate limits, GraphQL limits, 2FA, audit, JWT rotation ---
    jwt_previous_secret: str | None = Field(
        None,
        description="The JWT secret being rotated out: still verifies tokens until JWT_PREVIOUS_SECRET_UNTIL",
    )
    jwt_previous_secret_until: datetime | None = Field(
        None,
        description="End of the rotation grace period (ISO 8601 with offset); required with JWT_PREVIOUS_SECRET",
    )
    rate_limit_enabled: bool = Field(True, description="Apply the rate limits below")
    rate_limit_general: str = Field(
        "1000/hour", description="Requests per user (or per IP when anonymous)"
    )
    rate_limit_auth: str = Field(
        "10/minute", description="Login, refresh and 2FA attempts per account and per IP"
    )
    rate_limit_upload: str = Field("100/hour", description="Uploads per user")
    rate_limit_namespace: str = Field(
        "santana", description="Prefix of rate-limit and APQ keys in Redis"
    )
    graphql_max_aliases: int = Field(
        30, ge=1, description="Most aliases one GraphQL document may use"
    )
    graphql_max_tokens: int = Field(
        4000, ge=10, description="Most lexical tokens in one GraphQL document"
    )
    graphql_max_document_bytes: int = Field(
        32_768, ge=100, description="Largest GraphQL document (query text)"
    )
    graphql_max_body_bytes: int = Field(
        1_000_000, ge=1000, description="Largest /graphql request body"
    )
    graphql_max_cost: int = Field(
        10_000,
        ge=1,
        description="Most expensive operation accepted: fields, multiplied by the `first` above them",
    )
    graphql_max_batch: int = Field(10, ge=1, description="Most operations in one batched request")
    graphql_max_in_flight: int | None = Field(
        None,
        ge=1,
        description="GraphQL requests one process executes at once; the rest wait their turn "
        "(default: DATABASE_POOL_SIZE)",
    )
    graphql_compiled_reads: bool = Field(
        True,
        description="Answer the common read shapes (patients, sessions, me, ...) with compiled "
        "plans instead of field-by-field execution; same answers, a fraction of the CPU",
    )
    response_cache: bool = Field(
        False,
        description="Answer repeated reads from the response cache (per user, per clinic data "
        "version; in Redis when REDIS_URL is set, else in each process's memory)",
    )
    response_cache_seconds: float = Field(
        30.0, gt=0, description="Longest a cached response is kept"
    )
    response_cache_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Memory a process's response cache may use"
    )
    graphql_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest a GraphQL request may run"
    )
    graphql_introspection: bool | None = Field(
        None, description="Allow introspection (default: on outside production)"
    )
    graphql_field_suggestions: bool | None = Field(
        None, description="'Did you mean …' hints in errors (default: on outside production)"
    )
    graphql_apq: bool | None = Field(
        None, description="Automatic persisted queries (default: on outside production)"
    )
    graphql_safelist_file: str | None = Field(
        None, description="JSON safelist of persisted queries; when set, only those operations run"
    )
    two_factor_required: bool | None = Field(
        None, description="Require TOTP for platform and clinic admins (default: on in production)"
    )
    two_factor_issuer: str = Field("Santana", description="Issuer name shown in authenticator apps")
    audit_flush_seconds: float = Field(
        1.0,
        gt=0,
        description="Reads of patient records and notes are written to the audit log this often",
    )

    # --- patient documents (gateway/documents) ---
    document_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Largest patient document upload, in bytes"
    )
    document_storage: str = Field(
        "store_local",
        description="Storage plugin for documents (a clinic may enable its own storage plugin)",
    )
    document_local_dir: str = Field(
        "./var/documents", description="Directory of the built-in local document store"
    )
    document_retention_days: int = Field(
        30, ge=0, description="Days a deleted document is kept before the purge job removes it"
    )
    document_link_ttl_seconds: int = Field(
        300, ge=1, le=3600, description="Lifetime of a signed document download link"
    )

    @field_validator("database_url", "migration_database_url", "database_read_url")
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
            if (
                self.jwt_secret == DEV_JWT_SECRET
                or len(self.jwt_secret) < MIN_PRODUCTION_JWT_SECRET
            ):
                raise ValueError(
                    f"JWT_SECRET must be set to at least {MIN_PRODUCTION_JWT_SECRET} characters in production"
                )
            if DEV_ENCRYPTION_KEY in self.encryption_keys:
                raise ValueError(
                    "DATA_ENCRYPTION_KEYS must be set in production (the dev key is refused)"
                )
            if self.provider_fakes:
                raise ValueError("PROVIDER_FAKES cannot be on in production")
        if not self.encryption_keys:
            raise ValueError("DATA_ENCRYPTION_KEYS must hold at least one key")
        if self.jwt_previous_secret and self.jwt_previous_secret_until is None:
            raise ValueError(
                "JWT_PREVIOUS_SECRET_UNTIL must be set with JWT_PREVIOUS_SECRET (end of the grace period)"
            )
        if (
            self.jwt_previous_secret_until is not None
            and self.jwt_previous_secret_until.tzinfo is None
        ):
            raise ValueError(
                "JWT_PREVIOUS_SECRET_UNTIL needs a time zone offset (e.g. 2026-04-01T12:00:00Z)"
            )
        return self

    @cached_property
    def encryption_keys(self) -> list[str]:
        return [k.strip() for k in self.data_encryption_keys.split(",") if k.strip()]

    @property
    def plugins_allowed(self) -> list[str]:
        return [p.strip() for p in self.plugins_allow.split(",") if p.strip()]

    @property
    def alert_plugin_names(self) -> list[str]:
        return [p.strip() for p in self.alert_plugins.split(",") if p.strip()]

    @property
    def plugins_denied(self) -> list[str]:
        return [p.strip() for p in self.plugins_deny.split(",") if p.strip()]

    @property
    def max_in_flight(self) -> int:
        return self.graphql_max_in_flight or self.database_pool_size

    @property
    def provider_fakes_enabled(self) -> bool:
        return (
            (self.app_env == "development") if self.provider_fakes is None else self.provider_fakes
        )

    @property
    def fakes_url(self) -> str:
        """Where the provider fakes answer when PROVIDER_FAKES is on (the demo points plugins here)."""
        return f"{self.app_url.rstrip('/')}/_fakes"

    @property
    def email_reminders_in_process_enabled(self) -> bool:
        if self.email_reminders_in_process is not None:
            return self.email_reminders_in_process
        return self.app_env == "development"

    @property
    def dev_mailbox_enabled(self) -> bool:
        return (self.app_env == "development") if self.dev_mailbox is None else self.dev_mailbox

    @property
    def outbox_in_process_enabled(self) -> bool:
        return (
            (self.app_env == "development")
            if self.outbox_in_process is None
            else self.outbox_in_process
        )

    def jwt_verification_secrets(self, now: datetime | None = None) -> list[str]:
        """Secrets a token may be signed with: the current one, and the previous one during its grace."""
        secrets = [self.jwt_secret]
        until = self.jwt_previous_secret_until
        if self.jwt_previous_secret and until is not None and (now or datetime.now(UTC)) < until:
            secrets.append(self.jwt_previous_secret)
        return secrets

    @property
    def graphql_introspection_enabled(self) -> bool:
        return (
            (not self.is_production)
            if self.graphql_introspection is None
            else self.graphql_introspection
        )

    @property
    def graphql_field_suggestions_enabled(self) -> bool:
        return (
            (not self.is_production)
            if self.graphql_field_suggestions is None
            else self.graphql_field_suggestions
        )

    @property
    def graphql_apq_enabled(self) -> bool:
        return (not self.is_production) if self.graphql_apq is None else self.graphql_apq

    @property
    def two_factor_required_for_admins(self) -> bool:
        return self.is_production if self.two_factor_required is None else self.two_factor_required

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
