"""DATABASE_READ_URL: read-only operations read the replica, writes and recent writers the primary.

The "replica" here is a frozen copy of the primary taken after the test data was
written (a second database: PostgreSQL `CREATE DATABASE … TEMPLATE`, or a copy of the
SQLite file). It behaves like a streaming replica with unbounded lag, which makes the
routing visible: whatever reads the old value was served by the replica. Streaming
replication itself (WAL shipping, lag, promotion) is PostgreSQL's and is not tested
here; docs/scaling.md says what the gateway assumes of it.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.replica import is_read_only
from gateway.settings import Settings, load_settings
from schema.ids import to_global_id
from tests.conftest import PG_ADMIN_URL, PG_DATABASE, GraphQLClient
from tests.factories import World

READ = "query($id: ID!) { patient(id: $id) { firstName } }"
RENAME = """mutation($id: ID!) {
  updatePatient(id: $id, input: {firstName: "Renamed"}) { firstName } }"""
WINDOW = 1.0


TERMINATE = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname IN (:primary, :replica) AND pid <> pg_backend_pid()"
)


async def _pg(*statements: str, replica: str) -> None:
    """Run `statements` as the server admin, after closing every connection to the two."""
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(TERMINATE, {"primary": PG_DATABASE, "replica": replica})
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture
async def replica_url(
    backend: str, database_url: str, database: Database, world: World, tmp_path: Path
) -> AsyncIterator[str]:
    """A frozen copy of the primary, taken now (after `world` was written)."""
    await database.dispose()  # no open connections: the copy is consistent
    if backend == "sqlite":
        source = database_url.split(":///", 1)[1]
        with sqlite3.connect(source) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        copy = tmp_path / "replica.db"
        shutil.copy(source, copy)
        yield f"sqlite+aiosqlite:///{copy}"
        return
    name = f"{PG_DATABASE}_replica"
    await _pg(
        f'DROP DATABASE IF EXISTS "{name}"',
        f'CREATE DATABASE "{name}" TEMPLATE "{PG_DATABASE}"',
        # Like a hot standby: any write that reaches the replica fails.
        f'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
        replica=name,
    )
    yield database_url.rsplit("/", 1)[0] + f"/{name}"
    await _pg(f'DROP DATABASE IF EXISTS "{name}"', replica=name)


@pytest.fixture
async def replica_client(
    database_url: str, replica_url: str, world: World
) -> AsyncIterator[GraphQLClient]:
    import httpx

    settings: Settings = load_settings(
        app_env="test",
        database_url=database_url,
        database_read_url=replica_url,
        read_your_writes_seconds=WINDOW,
    )
    database = Database(settings.database_url)
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, settings)
    await database.dispose()


async def test_reads_go_to_the_replica_and_a_writer_reads_its_own_writes(
    replica_client: GraphQLClient, world: World
) -> None:
    """Tried: A's admin renames a patient, then reads it at once; A's counselor reads it;
    the admin reads it again after the read-your-writes window."""
    a = world.a
    patient = {"id": to_global_id("Patient", a.own_patient.id)}
    original = a.own_patient.first_name

    renamed = await replica_client.data(RENAME, patient, user=a.admin)
    assert renamed["updatePatient"]["firstName"] == "Renamed"  # the mutation: primary
    mine = await replica_client.data(READ, patient, user=a.admin)
    assert mine["patient"]["firstName"] == "Renamed", "the writer reads the primary"
    theirs = await replica_client.data(READ, patient, user=a.counselor)
    assert theirs["patient"]["firstName"] == original, "other users read the replica"
    await asyncio.sleep(WINDOW + 0.2)
    later = await replica_client.data(READ, patient, user=a.admin)
    assert later["patient"]["firstName"] == original, "after the window: the replica again"


async def test_the_replica_is_fenced_by_the_same_tenant_scope(
    replica_client: GraphQLClient, world: World
) -> None:
    """Tried: B's admin reads A's patient through the replica."""
    patient = {"id": to_global_id("Patient", world.a.own_patient.id)}
    assert await replica_client.error_code(READ, patient, user=world.b.admin) == "NOT_FOUND"


class _Data:
    def __init__(self, query: str | None, operation_name: str | None = None) -> None:
        self.query, self.operation_name = query, operation_name


def test_only_queries_are_read_only() -> None:
    two = "query A { me { id } } mutation B { logout }"
    assert is_read_only(_Data("{ me { id } }"))
    assert is_read_only(_Data(two, "A"))
    assert not is_read_only(_Data(two, "B"))
    assert not is_read_only(_Data(two))  # ambiguous: the primary
    assert not is_read_only(_Data("mutation { logout }"))
    assert not is_read_only(_Data(None))  # not known yet (persisted query)
    assert not is_read_only(_Data("{ broken"))
    assert not is_read_only([_Data("{ me { id } }"), _Data("mutation { logout }")])
    assert is_read_only([_Data("{ me { id } }"), _Data("{ me { email } }")])
