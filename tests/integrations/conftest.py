"""Fixtures for the integration layer: a gateway whose plugins are the test plugins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.integrations.hub import IntegrationHub
from gateway.settings import Settings, load_settings
from gateway.testing import plugin_manager
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.plugins import HangingMail, MemoryMail, MemoryPay, RaisingMail

KEY_A = "key-alpha-clinic-a-5f1e2d"
KEY_B = "key-beta-clinic-b-9c8b7a"
HOOK_SECRET_A = "whsec-clinic-a-0a1b2c3d"
CIRCUIT_FAILURES = 2


@dataclass
class Plugins:
    alpha: MemoryMail = field(default_factory=lambda: MemoryMail("mail_alpha"))
    beta: MemoryMail = field(default_factory=lambda: MemoryMail("mail_beta"))
    raising: RaisingMail = field(default_factory=lambda: RaisingMail("mail_raising"))
    hanging: HangingMail = field(default_factory=lambda: HangingMail("mail_hanging"))
    pay: MemoryPay = field(default_factory=MemoryPay)

    def all(self) -> list[Any]:
        return [self.alpha, self.beta, self.raising, self.hanging, self.pay]


@pytest.fixture
def plugins() -> Plugins:
    return Plugins()


@pytest.fixture
def integration_settings(settings: Settings) -> Settings:
    return load_settings(
        app_env="test",
        database_url=settings.database_url,
        integration_timeout_seconds=0.3,
        integration_circuit_failures=CIRCUIT_FAILURES,
        integration_circuit_reset_seconds=60,
        outbox_max_attempts=3,
        outbox_backoff_base_seconds=0.01,
        outbox_backoff_max_seconds=0.02,
    )


@pytest.fixture
async def hub(
    integration_settings: Settings, database: Database, plugins: Plugins
) -> AsyncIterator[IntegrationHub]:
    hub = IntegrationHub.create(
        integration_settings, database, manager=plugin_manager(*plugins.all())
    )
    yield hub
    await hub.close()


@pytest.fixture
async def gql(
    integration_settings: Settings, database: Database, hub: IntegrationHub
) -> AsyncIterator[GraphQLClient]:
    app = create_app(integration_settings, database, integrations=hub)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield GraphQLClient(http, integration_settings)


def clinic_gid(world: World, tag: str) -> str:
    return to_global_id("Clinic", getattr(world, tag).clinic.id)


ENABLE = """
mutation($plugin: String!, $config: JSON, $secrets: JSON, $clinicId: ID) {
  enableIntegration(plugin: $plugin, config: $config, secrets: $secrets, clinicId: $clinicId) {
    plugin kind enabled status config secrets { name isSet masked source } circuit { state }
  }
}"""
UPDATE = """
mutation($plugin: String!, $config: JSON, $secrets: JSON, $clinicId: ID) {
  updateIntegration(plugin: $plugin, config: $config, secrets: $secrets, clinicId: $clinicId) {
    plugin enabled status config lastError secrets { name isSet masked source }
  }
}"""
DISABLE = """
mutation($plugin: String!, $clinicId: ID) {
  disableIntegration(plugin: $plugin, clinicId: $clinicId) { plugin enabled status }
}"""
TEST = """
mutation($plugin: String!, $clinicId: ID) {
  testIntegration(plugin: $plugin, clinicId: $clinicId) {
    ok code message integration { status lastError circuit { state } }
  }
}"""
INTEGRATIONS = """
query($id: ID) { clinic(id: $id) { slug integrations {
  plugin kind label enabled status config lastError platformDefaults
  secrets { name isSet masked source }
  circuit { state consecutiveFailures retryInSeconds lastErrorCode }
} } }"""


async def enable(
    gql: GraphQLClient,
    user: Any,
    plugin: str,
    key: str,
    *,
    sender: str = "clinic@example.test",
    webhook_secret: str | None = None,
) -> dict[str, Any]:
    secrets = {"api_key": key}
    if webhook_secret:
        secrets["webhook_secret"] = webhook_secret
    return await gql.data(
        ENABLE, {"plugin": plugin, "config": {"sender": sender}, "secrets": secrets}, user=user
    )
