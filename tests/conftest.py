"""Test harness: every database test runs on SQLite and on real PostgreSQL.

PostgreSQL tests connect as an ordinary role (`santana_app`: no superuser, no
BYPASSRLS, owns nothing) so row-level security is really in force. When
PostgreSQL does not answer they are skipped locally, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.engine import Database
from gateway.db.migrate import upgrade
from gateway.db.models import Base
from gateway.settings import Settings, load_settings
from tests.factories import World, build_world

PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+asyncpg://root@127.0.0.1:5432/postgres"
)
# One database per test run, so parallel runs on one server never trample each other.
PG_DATABASE = os.environ.get("TEST_PG_DATABASE", f"santana_test_{os.getpid()}")
PG_APP_ROLE = "santana_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["all", "sqlite", "postgres"],
        default="all",
        help="which databases to run the database tests on",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        backends = ["sqlite", "postgres"] if choice == "all" else [choice]
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = [b for b in backends if b == "postgres"]
        metafunc.parametrize("backend", backends, indirect=True)


def _pg_url(database: str, user: str = "root") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("root@", f"{user}@", 1) + f"/{database}"


async def _pg_admin(*statements: str) -> None:
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": PG_APP_ROLE}
            )
            if not exists:
                with contextlib.suppress(Exception):  # created meanwhile by a parallel run
                    await conn.execute(
                        text(f"CREATE ROLE {PG_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
                    )
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": PG_DATABASE},
            )
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await admin.dispose()


def _postgres_available() -> str | None:
    async def probe() -> None:
        engine = create_async_engine(PG_ADMIN_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
        return None
    except Exception as exc:  # any failure means "not here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc!r}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[dict[str, str]]:
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(problem)
    drop = f'DROP DATABASE IF EXISTS "{PG_DATABASE}"'
    asyncio.run(_pg_admin(drop, f'CREATE DATABASE "{PG_DATABASE}"'))
    owner_url = _pg_url(PG_DATABASE)
    upgrade(owner_url, app_role=PG_APP_ROLE)
    yield {"owner": owner_url, "app": _pg_url(PG_DATABASE, PG_APP_ROLE)}
    asyncio.run(_pg_admin(drop))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database for this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copy(template, path)
        return f"sqlite+aiosqlite:///{path}"
    urls: dict[str, str] = request.getfixturevalue("postgres_database")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)

    async def truncate() -> None:
        engine = create_async_engine(urls["owner"])
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        finally:
            await engine.dispose()

    asyncio.run(truncate())
    return urls["app"]


@pytest.fixture
def owner_url(backend: str, request: pytest.FixtureRequest, database_url: str) -> str:
    """URL with the table owner's rights (bypasses nothing on SQLite)."""
    if backend == "sqlite":
        return database_url
    return request.getfixturevalue("postgres_database")["owner"]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(app_env="test", database_url=database_url, login_lockout_minutes=15)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def world(database: Database, settings: Settings) -> World:
    return await build_world(database, settings)


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, settings)


class GraphQLClient:
    """POSTs GraphQL operations; `as_user` sends a freshly minted access token."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def token_for(self, user: Any) -> str:
        principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
        token, _ = issue_access_token(principal, self.settings.jwt_secret, 300)
        return token

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        user: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = dict(headers or {})
        if user is not None:
            token = self.token_for(user)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        """Execute and insist there were no errors."""
        body = await self.execute(query, variables, **kw)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def error_code(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> str:
        """Execute and return the first error's code (insisting there was one)."""
        body = await self.execute(query, variables, **kw)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["extensions"]["code"]
