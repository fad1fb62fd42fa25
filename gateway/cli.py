"""The `santana` command: serve, migrate, seed-demo, create-admin, worker, rotate-keys, plugins."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from pathlib import Path

import typer

from gateway.settings import load_settings

app = typer.Typer(help="Santana gateway", no_args_is_help=True, add_completion=False)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest version."""
    from gateway.db.migrate import upgrade

    settings = load_settings()
    _logging(settings.log_level)
    upgrade(settings.migrations_url, settings.database_app_role)
    typer.echo("database is at the latest schema version")


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo clinics, staff, patients and sessions (idempotent)."""
    from gateway.crypto import DataCipher
    from gateway.db.engine import Database
    from gateway.demo import DEMO_PASSWORD, demo_logins, seed_demo_integrations
    from gateway.demo import seed_demo as seed
    from gateway.integrations.hub import IntegrationHub

    settings = load_settings()
    if settings.is_production:
        typer.echo("refusing to load demo data with APP_ENV=production", err=True)
        raise typer.Exit(2)

    async def run() -> tuple[bool, list[str]]:
        database = Database(settings.database_url)
        cipher = DataCipher(settings.encryption_keys)
        try:
            created = await seed(database, cipher)
            hub = IntegrationHub.create(settings, database, cipher)
            return created, await seed_demo_integrations(hub, settings.fakes_url)
        finally:
            await database.dispose()

    created, integrations = asyncio.run(run())
    typer.echo("demo data loaded" if created else "demo data already present")
    for name in integrations:
        typer.echo(f"  enabled {name} (against its local provider fake)")
    typer.echo(f"demo logins (password: {DEMO_PASSWORD}):")
    for role, email in demo_logins():
        typer.echo(f"  {role:15} {email}")


@app.command("create-admin")
def create_admin(
    email: str = typer.Option(..., help="Login email of the platform admin"),
    name: str = typer.Option("Platform Admin", help="Display name"),
) -> None:
    """Create a platform admin (password read from SANTANA_ADMIN_PASSWORD or a prompt)."""
    import os

    from gateway.services.admin_accounts import create_platform_admin

    password = os.environ.get("SANTANA_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    settings = load_settings()
    try:
        asyncio.run(create_platform_admin(settings, email=email, full_name=name, password=password))
    except Exception as exc:  # shown to the operator, without a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"platform admin {email.strip().lower()} created")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Overrides HOST"),
    port: int | None = typer.Option(None, help="Overrides PORT"),
    workers: int | None = typer.Option(None, help="Overrides WORKERS"),
) -> None:
    """Serve the gateway with uvicorn (one process per worker, each on its own socket)."""
    from gateway import serving

    settings = load_settings()
    _logging(settings.log_level)
    serving.run(
        workers or settings.workers,
        app="gateway.app:create_served_app",  # create_app, with the GC tuned once started
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        access_log=False,
        loop="uvloop",  # C event loop: tasks, futures and socket transports
        http="httptools",  # C HTTP/1.1 parser instead of h11
        # SIGTERM: stop accepting, finish in-flight requests, close websockets with 1012.
        timeout_graceful_shutdown=settings.shutdown_drain_seconds,
    )


@app.command()
def worker(
    once: bool = typer.Option(False, help="Deliver what is due now, then exit"),
    concurrency: int = typer.Option(4, help="Deliveries in flight at once"),
) -> None:
    """Deliver queued integration calls (the outbox); safe to run several at once on PostgreSQL."""
    import signal

    from gateway.db.engine import Database
    from gateway.documents import emr as document_emr
    from gateway.documents import purge as document_purge
    from gateway.integrations.hub import IntegrationHub
    from gateway.integrations.outbox import OutboxWorker
    from gateway.notifications import delivery, reminders
    from gateway.realtime.bus import EventBus

    settings = load_settings()
    _logging(settings.log_level)
    assert delivery.MESSAGE_TAG  # registers the email outcome handlers in this process
    assert document_emr.HOOK  # and the EMR document outcome handler

    async def run() -> None:
        database = Database(settings.database_url, pool_size=settings.database_pool_size)
        hub = IntegrationHub.create(settings, database)
        outbox = OutboxWorker(hub, concurrency=concurrency)
        # Status changes made here (email delivery, payments) reach subscribers via Redis.
        bus = EventBus(settings.redis_url, settings.rate_limit_namespace)
        if settings.redis_url:
            await bus.start(listen=False)
        try:
            if once:
                await reminders.sweep(database, settings, hub.cipher)
                await document_purge.purge_due(hub)
                stats = await outbox.run_once()
                typer.echo(
                    f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}"
                )
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await asyncio.gather(
                outbox.run_forever(stop),
                reminders.run_forever(database, settings, hub.cipher, stop),
                document_purge.run_forever(hub, stop),
            )
        finally:
            await bus.close()
            await hub.close()
            await database.dispose()

    asyncio.run(run())


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt secrets, queued payloads and notes under the first DATA_ENCRYPTION_KEYS key."""
    from gateway.crypto import DataCipher
    from gateway.db.engine import Database
    from gateway.integrations.rotation import rotate_keys as rotate

    settings = load_settings()
    _logging(settings.log_level)

    async def run() -> dict[str, int]:
        database = Database(settings.database_url)
        try:
            return (await rotate(database, DataCipher(settings.encryption_keys))).rotated
        finally:
            await database.dispose()

    try:
        rotated = asyncio.run(run())
    except ValueError as exc:  # a value no configured key can decrypt
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for column, count in rotated.items():
        typer.echo(f"  {column:40} {count} re-encrypted")
    typer.echo("done: every value is now encrypted with the first key; older keys may be removed")


plugins_app = typer.Typer(help="Installed integration plugins", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")


@plugins_app.command("list")
def plugins_list() -> None:
    """Show installed plugins, and those skipped or broken (exit 1 if any is broken)."""
    from gateway.integrations.manager import PluginManager
    from gateway.integrations.types import CONTRACT_VERSION

    settings = load_settings()
    manager = PluginManager.discover(settings.plugins_allowed, settings.plugins_denied)
    typer.echo(f"plugin contract {CONTRACT_VERSION}")
    for plugin in sorted(manager.plugins.values(), key=lambda p: (p.kind.value, p.name)):
        d = plugin.declaration
        typer.echo(f"  ok       {d.kind.value:8} {d.name:24} {d.label} ({plugin.source})")
    for name in manager.skipped_by_operator:
        typer.echo(f"  skipped  {'':8} {name:24} by PLUGINS_ALLOW/PLUGINS_DENY")
    for problem in manager.problems:
        typer.echo(f"  BROKEN   {'':8} {problem.name:24} {problem.reason} ({problem.source})")
    if manager.problems:
        raise typer.Exit(1)


@app.command()
def backup() -> None:
    """Back up the database into BACKUP_DIR (pg_dump for PostgreSQL, the backup API for SQLite)."""
    from gateway.ops.backup import BackupError
    from gateway.ops.backup import backup as run_backup

    settings = load_settings()
    try:
        path = asyncio.run(run_backup(settings))
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup written: {path} ({path.stat().st_size} bytes)")


@app.command()
def restore(
    file: Path = typer.Argument(..., help="A file written by `santana backup`"),
    verify: bool = typer.Option(
        False, "--verify", help="Restore into a scratch database and check it"
    ),
    admin_url: str | None = typer.Option(
        None, help="PostgreSQL URL allowed to CREATE DATABASE (default: MIGRATION_DATABASE_URL)"
    ),
) -> None:
    """Check a backup by restoring it into a scratch database (the monthly restore test)."""
    from gateway.ops.backup import BackupError, restore_verify

    if not verify:
        # Overwriting the live database is a deliberate, manual step: see docs/operations.md.
        typer.echo(
            "only `santana restore --verify FILE` is supported; see docs/operations.md", err=True
        )
        raise typer.Exit(2)
    try:
        report = asyncio.run(restore_verify(load_settings(), file, admin_url))
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored {file.name} into a scratch database (dropped afterwards)")
    typer.echo(f"migration: {report.revision or 'none'} (code expects {report.expected_revision})")
    for table, count in report.row_counts.items():
        typer.echo(f"  {table:28} {count:>8} rows")
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)
    typer.echo("backup verified" if report.ok else "backup NOT usable")
    raise typer.Exit(0 if report.ok else 1)


@app.command("plan-fee")
def plan_fee(
    clinic: str = typer.Argument(..., help="Clinic slug"),
    amount: int = typer.Argument(
        ..., min=0, help="Monthly plan fee in minor units (cents) of the clinic's currency"
    ),
) -> None:
    """Set a clinic's monthly plan fee (feeds MRR on the business dashboard)."""
    from gateway.ops.business import set_plan_fee

    try:
        currency = asyncio.run(set_plan_fee(load_settings(), clinic, amount))
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{clinic}: monthly plan fee {amount} ({currency} minor units)")


documents_app = typer.Typer(help="Patient documents", no_args_is_help=True)
app.add_typer(documents_app, name="documents")


@documents_app.command("purge")
def documents_purge() -> None:
    """Remove deleted documents whose DOCUMENT_RETENTION_DAYS have passed (object and row)."""
    from gateway.db.engine import Database
    from gateway.documents.purge import purge_due
    from gateway.integrations.hub import IntegrationHub

    settings = load_settings()
    _logging(settings.log_level)

    async def run() -> tuple[int, int]:
        database = Database(settings.database_url)
        hub = IntegrationHub.create(settings, database)
        try:
            report = await purge_due(hub)
            return report.purged, report.failed
        finally:
            await hub.close()
            await database.dispose()

    purged, failed = asyncio.run(run())
    typer.echo(f"purged {purged} documents, {failed} failed (retried on the next run)")
    if failed:
        raise typer.Exit(1)


audit_app = typer.Typer(help="The audit log", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    clinic: str | None = typer.Option(None, help="Only this clinic's chain (clinic id)"),
) -> None:
    """Check every clinic's audit hash chain; report the first broken link (exit 1 if any)."""
    import uuid

    from gateway.db.engine import Database
    from gateway.services.audit_chain import verify_chains

    settings = load_settings()

    async def run() -> list:  # type: ignore[type-arg]
        database = Database(settings.database_url)
        try:
            return await verify_chains(database, uuid.UUID(clinic) if clinic else None)
        finally:
            await database.dispose()

    reports = asyncio.run(run())
    for r in reports:
        if r.ok:
            typer.echo(f"ok      chain {r.chain}: {r.events} events")
        else:
            where = f"seq {r.broken_at_seq}" if r.broken_at_seq else "end"
            event = f" (event {r.event_id})" if r.event_id else ""
            typer.echo(f"BROKEN  chain {r.chain}: first broken link at {where}{event}: {r.reason}")
    broken = [r for r in reports if not r.ok]
    typer.echo(f"{len(reports)} chains checked, {len(broken)} broken")
    if broken:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    sys.exit(app())
