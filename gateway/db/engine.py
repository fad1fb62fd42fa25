"""Engine and sessions: one engine per process, one session per request or job."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.db.tenancy import SCOPE_KEY, TenantScope
from gateway.response_cache import versions  # noqa: F401  (every write bumps its clinic's version)


class StatementCounter:
    """Counts SQL statements issued while it is active (tests and metrics use it)."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []


_counter: contextvars.ContextVar[StatementCounter | None] = contextvars.ContextVar(
    "statement_counter", default=None
)


@asynccontextmanager
async def count_statements() -> AsyncIterator[StatementCounter]:
    counter = StatementCounter()
    token = _counter.set(counter)
    try:
        yield counter
    finally:
        _counter.reset(token)


def _on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    counter = _counter.get()
    if counter is not None:
        counter.count += 1
        counter.statements.append(statement)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("postgresql"):
        kwargs.update(pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    sync_engine: Engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _on_execute)
    if engine.dialect.name == "sqlite":
        event.listen(sync_engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """The engine and a session factory bound to it (and, optionally, a read replica's)."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        # close_resets_only=False: a closed session refuses further use instead of opening a
        # new transaction. graphql-core can leave a failed field's siblings running after the
        # answer; once the request has closed its session they must fail, not check out a
        # connection nobody will ever return (it would sit idle in transaction, holding locks).
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, close_resets_only=False
        )
        # DATABASE_READ_URL (gateway.db.replica decides who may read there).
        self.replica: Database | None = None

    def attach_replica(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.replica = Database(url, pool_size=pool_size, echo=echo)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, scope: TenantScope, *, read_only: bool = False) -> AsyncSession:
        """A new session fenced to `scope` (see gateway.db.tenancy); on the replica if
        `read_only` and one is attached (its transactions set the same tenant scope)."""
        if read_only and self.replica is not None:
            return self.replica.session(scope)
        session = self._sessions()
        session.info[SCOPE_KEY] = scope
        return session

    @asynccontextmanager
    async def transaction(self, scope: TenantScope) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on any error."""
        async with self.session(scope) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        if self.replica is not None:
            await self.replica.dispose()
        await self.engine.dispose()
