"""The example third-party plugin: installed, discovered, enabled, passes the contract."""

from __future__ import annotations

import json

import httpx
from santana_example_mail import plugin, signing
from santana_example_mail.fake import FakeRelay

from gateway.app import create_app
from gateway.integrations.hub import IntegrationHub
from gateway.testing import PluginContractTests
from tests.conftest import GraphQLClient
from tests.factories import World

TOKEN = "relay-token-0123456789"
WEBHOOK_SECRET = "whsec-example-9876543210"


class TestExampleMailContract(PluginContractTests):
    plugin = plugin
    config = {"endpoint": "http://relay.test", "from_address": "clinic@mail.test"}
    secrets = {"api_token": TOKEN, "webhook_secret": WEBHOOK_SECRET}
    bad_secrets = {"api_token": "relay-token-WRONG-000000"}

    def http_transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=FakeRelay(token=TOKEN).app())

    def webhook_body(self, event_id: str) -> bytes:
        return json.dumps(
            {"id": event_id, "type": "message.delivered", "message_id": "msg_1"}
        ).encode()

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            signing.HEADER: signing.sign(body, WEBHOOK_SECRET),
        }


async def test_the_gateway_discovers_it_and_one_clinic_enables_it(
    settings: object, database: object, world: World
) -> None:
    relay = FakeRelay(token=TOKEN)
    # Plain discovery, as `make run` does it: only the transport is pointed at the fake relay.
    hub = IntegrationHub.create(
        settings, database, http_transport=httpx.ASGITransport(app=relay.app())
    )  # type: ignore[arg-type]
    assert hub.manager.get("example_mail") is not None
    app = create_app(settings, database, integrations=hub)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        gql = GraphQLClient(http, settings)  # type: ignore[arg-type]
        enabled = await gql.data(
            "mutation($c: JSON, $s: JSON) "
            '{ enableIntegration(plugin: "example_mail", config: $c, secrets: $s)'
            " { plugin enabled status } }",
            {"c": TestExampleMailContract.config, "s": TestExampleMailContract.secrets},
            user=world.a.admin,
        )
        assert enabled["enableIntegration"] == {
            "plugin": "example_mail",
            "enabled": True,
            "status": "active",
        }
        other = await gql.data("{ clinic { integrations { plugin } } }", user=world.b.admin)
        assert other["clinic"]["integrations"] == []
