"""The plugin author kit's contract, run against the three email plugins and their fakes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

import plugins.mail_devbox.plugin as devbox_plugin
import plugins.mail_mailgun.plugin as mailgun_plugin
import plugins.mail_sendgrid.plugin as sendgrid_plugin
from gateway.testing import PluginContractTests, SantanaHarness
from plugins.mail_mailgun import signing as mailgun_signing
from plugins.mail_mailgun.fake import FakeMailgun
from plugins.mail_sendgrid import signing as sendgrid_signing
from plugins.mail_sendgrid.fake import DEMO_SIGNING_KEY_PEM, FakeSendGrid

SENDGRID_KEY = "SG.contract-key-0123456789"
MAILGUN_KEY = "key-contract-0123456789"
MAILGUN_SIGNING = "mailgun-contract-signing-key"
SENDGRID_SIGNER = sendgrid_signing.load_key(DEMO_SIGNING_KEY_PEM)


class TestSendGridContract(PluginContractTests):
    plugin = sendgrid_plugin
    config: ClassVar[dict[str, str]] = {
        "from_email": "care@clinic.test",
        "api_base": "http://sendgrid.test",
        "webhook_public_key": sendgrid_signing.public_key_b64(SENDGRID_SIGNER),
    }
    secrets: ClassVar[dict[str, str]] = {"api_key": SENDGRID_KEY}
    bad_secrets: ClassVar[dict[str, str]] = {"api_key": "SG.wrong-key-9999999999"}

    def http_transport(self) -> httpx.AsyncBaseTransport:
        fake = FakeSendGrid(api_keys={SENDGRID_KEY}, key=SENDGRID_SIGNER)
        return httpx.ASGITransport(app=fake.app())

    def webhook_body(self, event_id: str) -> bytes:
        event = {"sg_event_id": event_id, "event": "delivered", "email": "p@example.test"}
        return json.dumps([event]).encode()

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        return sendgrid_signing.sign(SENDGRID_SIGNER, body, str(int(time.time())))


class TestMailgunContract(PluginContractTests):
    plugin = mailgun_plugin
    config: ClassVar[dict[str, str]] = {
        "domain": "mg.clinic.test",
        "from_email": "care@mg.clinic.test",
        "api_base": "http://mailgun.test",
    }
    secrets: ClassVar[dict[str, str]] = {
        "api_key": MAILGUN_KEY,
        "webhook_signing_key": MAILGUN_SIGNING,
    }
    bad_secrets: ClassVar[dict[str, str]] = {"api_key": "key-wrong-000000000000"}

    def http_transport(self) -> httpx.AsyncBaseTransport:
        fake = FakeMailgun(domains={"mg.clinic.test": MAILGUN_KEY}, signing_key=MAILGUN_SIGNING)
        return httpx.ASGITransport(app=fake.app())

    @staticmethod
    def _payload(event_id: str, signing_key: str) -> bytes:
        stamp, token = str(int(time.time())), "t" * 50
        signed = {
            "timestamp": stamp,
            "token": token,
            "signature": mailgun_signing.signature(signing_key, stamp, token),
        }
        event = {"id": event_id, "event": "delivered", "recipient": "p@example.test"}
        return json.dumps({"signature": signed, "event-data": event}).encode()

    @pytest.mark.asyncio
    async def test_contract_webhooks_verified_and_deduplicated(
        self, santana: SantanaHarness
    ) -> None:
        # Mailgun signs inside the body, so the forgery is a body signed with another key.
        await santana.enable(self.name, self.config, self.secrets)
        headers = {"content-type": "application/json"}
        forged = self._payload("evt_contract_1", "not-the-signing-key")
        assert (await santana.post_webhook(self.name, forged, headers)).status_code == 400
        assert await santana.webhook_receipts() == 0
        body = self._payload("evt_contract_1", MAILGUN_SIGNING)
        first = await santana.post_webhook(self.name, body, headers)
        again = await santana.post_webhook(self.name, body, headers)
        assert (first.status_code, first.json()["result"]) == (200, "processed")
        assert (again.status_code, again.json()["result"]) == (200, "duplicate")
        assert await santana.webhook_receipts() == 1


class TestDevboxContract(PluginContractTests):
    plugin = devbox_plugin
    config: ClassVar[dict[str, str]] = {"directory": str(Path("var") / "contract-mailbox")}

    @pytest.fixture(autouse=True)
    def _mailbox_in_tmp(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)  # the relative mailbox directory lands in the test's tmp
