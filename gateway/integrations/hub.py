"""IntegrationHub: the per-process state of the integration layer.

Created once in create_app (and by the worker and the testing kit): the checked
plugins, the config store, the circuit breakers and the outbound HTTP client
plugins share. It is reachable from every ServiceContext as `ctx.integrations`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.integrations.circuit import Breakers
from gateway.integrations.config import ConfigStore, PlatformDefaults
from gateway.integrations.manager import PluginManager
from gateway.integrations.models import Integration
from gateway.settings import Settings

USER_AGENT = "santana-gateway"


@dataclass
class IntegrationHub:
    settings: Settings
    database: Database
    cipher: DataCipher
    manager: PluginManager
    store: ConfigStore
    breakers: Breakers
    http_transport: httpx.AsyncBaseTransport | None = None
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        settings: Settings,
        database: Database,
        cipher: DataCipher | None = None,
        manager: PluginManager | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> IntegrationHub:
        cipher = cipher or DataCipher(settings.encryption_keys)
        manager = manager or PluginManager.discover(
            settings.plugins_allowed, settings.plugins_denied
        )
        defaults = PlatformDefaults.load(
            [p.declaration for p in manager.plugins.values()], settings.integration_defaults_file
        )
        return cls(
            settings=settings,
            database=database,
            cipher=cipher,
            manager=manager,
            store=ConfigStore(cipher, defaults),
            breakers=Breakers(
                settings.integration_circuit_failures, settings.integration_circuit_reset_seconds
            ),
            http_transport=http_transport,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """One pooled client for every plugin; timeouts bounded by the dispatch timeout."""
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(
                transport=self.http_transport,
                timeout=httpx.Timeout(self.settings.integration_timeout_seconds),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def row(self, db: AsyncSession, clinic_id: uuid.UUID, plugin: str) -> Integration | None:
        return await db.scalar(
            select(Integration).where(
                Integration.clinic_id == clinic_id, Integration.plugin == plugin
            )
        )

    async def enabled_row(
        self, db: AsyncSession, clinic_id: uuid.UUID, kind: str
    ) -> Integration | None:
        return await db.scalar(
            select(Integration).where(
                Integration.clinic_id == clinic_id,
                Integration.kind == kind,
                Integration.enabled.is_(True),
            )
        )
