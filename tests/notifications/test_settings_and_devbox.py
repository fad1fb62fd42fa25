"""Clinic sender overrides, the development mailbox plugin, and who may see what."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx

import plugins.mail_devbox.plugin as devbox
from gateway.integrations import EmailMessage, PluginContext
from gateway.notifications.mailbox import Mailbox
from plugins.mail_devbox.plugin import DevboxConfig
from schema.ids import to_global_id
from tests.notifications.conftest import MailApp

UPDATE = """mutation($n: String, $r: String) {
  updateEmailSettings(senderName: $n, replyTo: $r) { senderName replyTo } }"""


async def test_clinic_sender_name_and_reply_to_are_used(mail: MailApp) -> None:
    a = mail.world.a
    data = await mail.gql.data(
        UPDATE, {"n": "Bright Care Team", "r": "Desk@Clinic-A.example"}, user=a.admin
    )
    assert data["updateEmailSettings"] == {
        "senderName": "Bright Care Team",
        "replyTo": "desk@clinic-a.example",
    }
    await mail.book(a)
    await mail.deliver()
    sent = mail.providers.sendgrid.accepted[-1]["mail"]
    assert sent["from"] == {"email": "care@clinic-a.example", "name": "Bright Care Team"}
    assert sent["reply_to"] == {"email": "desk@clinic-a.example"}


async def test_bad_overrides_are_refused_and_others_cannot_touch_them(mail: MailApp) -> None:
    a, b = mail.world.a, mail.world.b
    assert (
        await mail.gql.error_code(UPDATE, {"n": "Evil\r\nBcc: x@y"}, user=a.admin) == "VALIDATION"
    )
    assert await mail.gql.error_code(UPDATE, {"r": "not-an-address"}, user=a.admin) == "VALIDATION"
    assert await mail.gql.error_code(UPDATE, {"n": "Mine"}, user=a.counselor) == "FORBIDDEN"
    query = "query($c: ID) { emailSettings(clinicId: $c) { senderName } }"
    a_clinic = to_global_id("Clinic", a.clinic.id)
    assert await mail.gql.error_code(query, {"c": a_clinic}, user=b.admin) == "NOT_FOUND"
    for user in (a.counselor, a.patient_user):
        assert await mail.gql.error_code("{ emailMessages { id } }", user=user) == "FORBIDDEN"


async def test_devbox_plugin_keeps_the_clinic_messages(mail: MailApp, tmp_path: Path) -> None:
    b = mail.world.b
    box = tmp_path / "devbox"
    await mail.gql.data(
        'mutation { disableIntegration(plugin: "mail_mailgun") { plugin } }', user=b.admin
    )
    enable = (
        """mutation($c: JSON) { enableIntegration(plugin: "mail_devbox", config: $c) { status } }"""
    )
    await mail.gql.data(enable, {"c": {"directory": str(box)}}, user=b.admin)
    await mail.book(b)
    assert (await mail.deliver()).delivered == 1
    [entry] = Mailbox(box).list()
    assert entry.via == "mail_devbox" and entry.subject == "Your session is booked"
    assert entry.clinic_id == str(b.clinic.id)
    [message] = await mail.messages(b.admin)
    assert message["status"] == "SENT" and message["provider"] == "mail_devbox"
    assert mail.providers.mailgun.accepted == []


async def test_devbox_retry_with_the_same_key_keeps_one_copy(tmp_path: Path) -> None:
    clinic_id = uuid.uuid4()
    ctx = PluginContext(
        clinic_id=clinic_id,
        plugin="mail_devbox",
        config=DevboxConfig(directory=str(tmp_path)),
        http=httpx.AsyncClient(),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        idempotency_key=str(uuid.uuid4()),
    )
    message = EmailMessage(to=["p@example.test"], subject="Hello", text="Hi")
    first = await devbox.send_email(ctx, message)
    second = await devbox.send_email(ctx, message)
    assert first == second
    assert [e.subject for e in Mailbox(tmp_path).list(str(clinic_id))] == ["Hello"]
