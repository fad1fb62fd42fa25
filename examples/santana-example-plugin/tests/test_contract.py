"""The gateway's contract tests, run against this plugin and a fake relay."""

from __future__ import annotations

import json

import httpx
import pytest
from santana_example_mail import plugin, signing
from santana_example_mail.fake import FakeRelay

from gateway.testing import PluginContractTests

TOKEN = "relay-token-0123456789"  # noqa: S105
WEBHOOK_SECRET = "whsec-example-9876543210"  # noqa: S105


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


def test_stale_signatures_are_refused() -> None:
    body = b"{}"
    old = signing.sign(body, WEBHOOK_SECRET, timestamp=1_000)
    assert not signing.verify(body, old, WEBHOOK_SECRET)
    assert signing.verify(body, signing.sign(body, WEBHOOK_SECRET), WEBHOOK_SECRET)


@pytest.mark.parametrize("header", [None, "", "t=abc,v1=00", "v1=00"])
def test_malformed_signature_headers_are_refused(header: str | None) -> None:
    assert not signing.verify(b"{}", header, WEBHOOK_SECRET)
