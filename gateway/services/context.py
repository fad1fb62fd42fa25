"""What every service call needs: the caller, its database session, the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.errors import Unauthenticated
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.integrations.hub import IntegrationHub


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
        await self.db.connection()

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise self.auth_error or Unauthenticated("Log in first.", reason="missing")
        return self.principal

    async def close(self) -> None:
        for session in [*self._retired, self._session]:
            if session is not None:
                await session.close()
        self._retired.clear()
        self._session = None
