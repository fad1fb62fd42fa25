"""The `santana` command: serve, migrate, seed-demo, create-admin."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys

import typer

from gateway.settings import load_settings

app = typer.Typer(help="Santana gateway", no_args_is_help=True, add_completion=False)


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


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
    from gateway.demo import DEMO_PASSWORD, demo_logins
    from gateway.demo import seed_demo as seed

    settings = load_settings()
    if settings.is_production:
        typer.echo("refusing to load demo data with APP_ENV=production", err=True)
        raise typer.Exit(2)

    async def run() -> bool:
        database = Database(settings.database_url)
        try:
            return await seed(database, DataCipher(settings.encryption_keys))
        finally:
            await database.dispose()

    created = asyncio.run(run())
    typer.echo("demo data loaded" if created else "demo data already present")
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
    """Serve the gateway with uvicorn."""
    import uvicorn

    settings = load_settings()
    _logging(settings.log_level)
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        access_log=False,
    )


def main() -> None:  # pragma: no cover
    sys.exit(app())
