"""What every service call needs: the caller, its database session, the settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.errors import Unauthenticated
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.integrations.hub import IntegrationHub

log = logging.getLogger("santana")


@dataclass
class ServiceContext:
    settings: Settings
    database: Database
    cipher: DataCipher
    principal: Principal | None = None
    # Why the bearer token was refused, if one was sent and refused.
    auth_error: Unauthenticated | None = None
    request_id: str | None = None
    ip: str | None = None
    # The plugin layer (gateway.integrations); None where no plugins are loaded.
    integrations: IntegrationHub | None = field(default=None, repr=False)
    # A read-only operation whose caller wrote nothing lately: may read the replica.
    read_only: bool = False
    _session: AsyncSession | None = field(default=None, repr=False)
    _retired: list[AsyncSession] = field(default_factory=list, repr=False)
    _driver: Any = field(default=None, repr=False)

    @property
    def db(self) -> AsyncSession:
        """The request's session, fenced to the caller's clinic (opened on first use)."""
        if self._session is None:
            from gateway.db.tenancy import TenantScope

            scope = self.principal.tenant_scope() if self.principal else TenantScope.nobody()
            self._session = self.database.session(scope, read_only=self.read_only)
        return self._session

    def sign_in(self, principal: Principal) -> None:
        """From here on this request acts as `principal` (it just proved its credentials)."""
        self.principal = principal
        self.auth_error = None
        if self._session is not None:
            # Fenced to the previous caller: retire it, the next use opens a new one.
            self._retired.append(self._session)
            self._session = None

    async def hold_connection(self) -> None:
        """Check a connection out for the session now.

        Sibling resolvers run concurrently; an AsyncSession that has no connection yet
        cannot open one from two tasks at once, but queries on a held connection are
        serialised safely. Called before execution and again after each commit.
        """
        connection = await self.db.connection()
        # The driver's connection, to wait out a running or cancelled query before closing.
        self._driver = (await connection.get_raw_connection()).dbapi_connection

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise self.auth_error or Unauthenticated("Log in first.", reason="missing")
        return self.principal

    async def close(self) -> None:
        for session in [*self._retired, self._session]:
            if session is None:
                continue
            try:
                if session is self._session:
                    await _settle(self._driver)
                await session.close()
            except (DBAPIError, TimeoutError) as exc:
                # graphql-core cancels a failed field's siblings; one cancelled mid-query
                # leaves its connection busy, so it cannot roll back. Drop that connection
                # (the pool opens another) rather than turn the answer into a 500.
                log.warning("request %s: connection dropped at close: %s", self.request_id, exc)
                await session.invalidate()
        self._retired.clear()
        self._session = None


async def _settle(adapted: Any) -> None:
    """Wait out a query still on the connection before closing it.

    graphql-core may answer while a failed field's siblings still run (settled in the
    background) or are being cancelled; rolling back under them fails. SQLAlchemy's
    asyncpg adapter runs each statement under a lock, and asyncpg keeps a cancelled query's
    connection busy until the server confirms, so wait for both (asyncpg's pool does too).
    """
    mutex = getattr(adapted, "_execute_mutex", None)
    if mutex is not None:
        async with asyncio.timeout(CANCEL_WAIT_SECONDS):
            async with mutex:
                pass
    protocol = getattr(getattr(adapted, "_connection", None), "_protocol", None)
    if protocol is not None and protocol._is_cancelling():
        await protocol._wait_for_cancellation(CANCEL_WAIT_SECONDS)


CANCEL_WAIT_SECONDS = 5.0
