"""The production-readiness checklist: each item passes or fails with the fix.

Shown on /production-readiness. The checks look at behaviour where they can
(introspection is tried, not inferred from a setting) and read other layers'
tables defensively (integrations), so they work while those layers are absent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, inspect, select

from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.ops.backup import latest_backup
from gateway.ops.readiness import Check, check_migrations, check_redis
from gateway.ops.system import tls_days_left
from gateway.settings import DEV_ENCRYPTION_KEY, DEV_JWT_SECRET, MIN_PRODUCTION_JWT_SECRET, Settings

INTROSPECTION_PROBE = "query ReadinessProbe { __schema { queryType { name } } }"


def settings_checks(s: Settings) -> list[Check]:
    secret_ok = s.jwt_secret != DEV_JWT_SECRET and len(s.jwt_secret) >= MIN_PRODUCTION_JWT_SECRET
    return [
        Check(
            "JWT secret",
            secret_ok,
            f"{len(s.jwt_secret)} characters"
            + (" (the development default)" if s.jwt_secret == DEV_JWT_SECRET else ""),
            fix=f"Set JWT_SECRET to at least {MIN_PRODUCTION_JWT_SECRET} random characters: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'",
        ),
        Check(
            "Production mode", s.is_production, f"APP_ENV={s.app_env}", fix="Set APP_ENV=production"
        ),
        Check(
            "PostgreSQL database",
            s.is_postgres,
            "PostgreSQL" if s.is_postgres else "SQLite",
            fix="Point DATABASE_URL at PostgreSQL (SQLite is for development)",
        ),
        Check(
            "SQL echo off",
            not s.database_echo,
            f"DATABASE_ECHO={s.database_echo}",
            fix="Unset DATABASE_ECHO (it logs every statement)",
        ),
        Check(
            "HTTPS app URL",
            s.app_url.startswith("https://"),
            s.app_url,
            fix="Set APP_URL to the public https:// address",
        ),
        Check(
            "Encryption keys",
            bool(s.encryption_keys) and DEV_ENCRYPTION_KEY not in s.encryption_keys,
            f"{len(s.encryption_keys)} key(s)"
            + (
                ", including the development key" if DEV_ENCRYPTION_KEY in s.encryption_keys else ""
            ),
            fix="Set DATA_ENCRYPTION_KEYS to a fresh Fernet key: "
            "python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'",
        ),
        Check(
            "GraphiQL off",
            not s.graphiql_enabled,
            "served at /graphql" if s.graphiql_enabled else "not served",
            fix="Unset GRAPHIQL (it defaults to off in production)",
        ),
        Check(
            "Metrics protected",
            s.metrics_token is not None,
            "METRICS_TOKEN set"
            if s.metrics_token
            else "/metrics is open to anyone who can reach it",
            fix="Set METRICS_TOKEN and give it to the Prometheus scraper",
        ),
        Check(
            "Shared rate limits",
            s.workers <= 1 or bool(s.redis_url),
            f"WORKERS={s.workers}",
            fix="Set REDIS_URL so every worker shares the rate limits",
        ),
    ]


async def introspection_check(schema: Any, context: Any) -> Check:
    try:
        result = await schema.execute(INTROSPECTION_PROBE, context_value=context)
    except Exception as exc:  # the check reports what it could not learn
        return Check(
            "Introspection off",
            False,
            f"could not probe: {type(exc).__name__}",
            fix="Make sure the schema builds and answers queries",
        )
    open_ = bool(result.data and result.data.get("__schema"))
    return Check(
        "Introspection off",
        not open_,
        "schema is introspectable" if open_ else "refused",
        fix="Disable introspection in production (it is off when APP_ENV=production)",
    )


def backup_check(s: Settings) -> Check:
    latest = latest_backup(Path(s.backup_dir))
    if latest is None:
        return Check(
            "Backups recent",
            False,
            f"no backup in {s.backup_dir}",
            fix="Run `santana backup` daily (cron/systemd timer), "
            "and `santana restore --verify` monthly",
        )
    age_hours = (time.time() - latest.stat().st_mtime) / 3600
    return Check(
        "Backups recent",
        age_hours <= s.backup_max_age_hours,
        f"{latest.name}, {age_hours:.1f} h old",
        fix=f"Newest backup is older than {s.backup_max_age_hours:g} h: "
        "check the `santana backup` schedule",
    )


def tls_check(s: Settings) -> Check:
    if not s.tls_cert_path:
        return Check(
            "TLS certificate", True, "TLS_CERT_PATH not set (TLS ends at the proxy)", skipped=True
        )
    try:
        days = tls_days_left(s.tls_cert_path)
    except (OSError, ValueError) as exc:
        return Check(
            "TLS certificate",
            False,
            f"unreadable: {type(exc).__name__}",
            fix="Point TLS_CERT_PATH at a PEM file",
        )
    assert days is not None
    return Check(
        "TLS certificate",
        days >= s.alert_tls_days,
        f"expires in {days:.0f} days",
        fix="Renew the certificate (auto-renewal may have stopped)",
    )


async def integrations_check(database: Database) -> Check:
    """Every enabled integration's last validation passed (stored by the integration layer)."""
    async with database.transaction(TenantScope.cross_clinic()) as db:
        conn = await db.connection()

        def reflect(sync_conn: Any) -> Table | None:
            if "integrations" not in inspect(sync_conn).get_table_names():
                return None
            return Table("integrations", MetaData(), autoload_with=sync_conn)

        table = await conn.run_sync(reflect)
        if table is None or not {"enabled", "status", "plugin", "clinic_id"} <= set(table.c.keys()):
            return Check(
                "Integrations validating", True, "integration layer not installed", skipped=True
            )
        rows = (
            await db.execute(
                select(table.c.clinic_id, table.c.plugin, table.c.status).where(
                    table.c.enabled.is_(True)
                )
            )
        ).all()
    failing = [
        f"{plugin} (clinic {str(clinic)[:8]})"
        for clinic, plugin, status in rows
        if status != "active"
    ]
    if failing:
        return Check(
            "Integrations validating",
            False,
            f"{len(failing)} of {len(rows)} failing: " + ", ".join(failing[:10]),
            fix="Open the clinic's integration settings, fix the credentials, and run its test",
        )
    return Check("Integrations validating", True, f"{len(rows)} enabled, all validating")


async def production_checks(
    settings: Settings, database: Database, schema: Any = None, context: Any = None
) -> list[Check]:
    checks = settings_checks(settings)
    migrations = await check_migrations(database)
    checks.append(
        Check("Migrations current", migrations.ok, migrations.detail, fix="Run `santana migrate`")
    )
    if schema is not None:
        checks.append(await introspection_check(schema, context))
    try:
        checks.append(await integrations_check(database))
    except Exception as exc:  # unreachable database: already visible on /api/ready
        checks.append(
            Check("Integrations validating", False, f"could not read: {type(exc).__name__}")
        )
    checks.append(backup_check(settings))
    checks.append(tls_check(settings))
    redis_check = await check_redis(settings.redis_url)
    checks.append(
        Check(
            "Redis",
            redis_check.ok,
            redis_check.detail,
            fix="Check REDIS_URL",
            skipped=redis_check.skipped,
        )
    )
    return checks
