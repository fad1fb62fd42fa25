"""Provider webhooks: SendGrid's ECDSA Event Webhook and Mailgun's HMAC webhooks update
delivery status; bad or stale signatures and replays change nothing; bounces mark the address."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.db.tenancy import TenantScope
from gateway.notifications.models import EmailBounce
from plugins.mail_sendgrid import signing as sendgrid_signing
from tests.notifications.conftest import MailApp

BOUNCES = "{ bouncedEmailAddresses { address provider reason } }"


async def _sent_via_sendgrid(mail: MailApp) -> str:
    await mail.book(mail.world.a)
    await mail.deliver()
    return str(mail.providers.sendgrid.accepted[-1]["id"])


async def _sent_via_mailgun(mail: MailApp) -> str:
    await mail.book(mail.world.b)
    await mail.deliver()
    return str(mail.providers.mailgun.accepted[-1]["id"])


async def test_sendgrid_delivered_event_marks_the_message_delivered(mail: MailApp) -> None:
    sendgrid = mail.providers.sendgrid
    message_id = await _sent_via_sendgrid(mail)
    batch = [
        sendgrid.events_for(message_id, "processed"),
        sendgrid.events_for(message_id, "delivered"),
        sendgrid.events_for(message_id, "open"),
    ]
    reply = await mail.webhook("clinic-a", "mail_sendgrid", sendgrid.sign(batch))
    assert reply.status_code == 200, reply.text
    [message] = await mail.messages(mail.world.a.admin)
    assert message["status"] == "DELIVERED"
    assert [e.status for e in mail.events][-1] == "delivered"


async def test_sendgrid_bad_signature_wrong_key_and_stale_timestamp_are_refused(
    mail: MailApp,
) -> None:
    sendgrid = mail.providers.sendgrid
    message_id = await _sent_via_sendgrid(mail)
    batch = [sendgrid.events_for(message_id, "bounce", type="bounce")]
    signed = sendgrid.sign(batch)
    tampered = signed.body.replace(b"bounce", b"delivered")
    attempts = {
        "body changed after signing": (tampered, signed.headers),
        "signed with another key": (
            signed.body,
            sendgrid_signing.sign(sendgrid_signing.new_key(), signed.body, str(int(time.time()))),
        ),
        "no signature headers": (signed.body, {"Content-Type": "application/json"}),
    }
    for what, (body, headers) in attempts.items():
        reply = await mail.http.post(
            "/webhooks/clinic-a/mail_sendgrid", content=body, headers=headers
        )
        assert reply.status_code == 400, what
    stale = sendgrid.sign(batch, timestamp=int(time.time()) - 3600)
    assert (await mail.webhook("clinic-a", "mail_sendgrid", stale)).status_code == 400
    [message] = await mail.messages(mail.world.a.admin)
    assert message["status"] == "SENT"  # nothing applied
    assert (await mail.gql.data(BOUNCES, user=mail.world.a.admin))["bouncedEmailAddresses"] == []


async def test_sendgrid_redelivered_events_apply_once(mail: MailApp) -> None:
    sendgrid = mail.providers.sendgrid
    message_id = await _sent_via_sendgrid(mail)
    delivered = sendgrid.events_for(message_id, "delivered")
    first = await mail.webhook("clinic-a", "mail_sendgrid", sendgrid.sign([delivered]))
    assert first.json()["result"] == "processed"
    # The same batch again (a provider retry) and the same event inside a new batch.
    again = await mail.webhook("clinic-a", "mail_sendgrid", sendgrid.sign([delivered]))
    assert again.status_code == 200
    statuses = [e.status for e in mail.events]
    assert statuses.count("delivered") == 1


async def test_sendgrid_bounce_marks_the_address_and_stops_further_mail(mail: MailApp) -> None:
    a = mail.world.a
    sendgrid = mail.providers.sendgrid
    message_id = await _sent_via_sendgrid(mail)
    bounce = sendgrid.events_for(message_id, "bounce", type="bounce", reason="550 no such user")
    assert (
        await mail.webhook("clinic-a", "mail_sendgrid", sendgrid.sign([bounce]))
    ).status_code == 200
    [message] = await mail.messages(a.admin)
    assert message["status"] == "BOUNCED"
    assert message["statusReason"] == "SendGrid: bounce"
    bounced = (await mail.gql.data(BOUNCES, user=a.admin))["bouncedEmailAddresses"]
    assert bounced == [
        {"address": a.own_patient.email, "provider": "mail_sendgrid", "reason": "SendGrid: bounce"}
    ]
    # Clinic B does not see A's bounce list.
    assert (await mail.gql.data(BOUNCES, user=mail.world.b.admin))["bouncedEmailAddresses"] == []
    # The next notification to that address is not sent, and says why.
    await mail.book(a, days=5)
    newest = (await mail.messages(a.admin))[0]
    assert newest["status"] == "NOT_SENT" and "bounced" in newest["statusReason"]
    await mail.deliver()
    assert len(sendgrid.accepted) == 1
    # The admin clears it after checking the address: mail flows again.
    clear = """mutation($a: String!) { clearBouncedEmailAddress(address: $a) }"""
    assert (await mail.gql.data(clear, {"a": a.own_patient.email}, user=a.admin))[
        "clearBouncedEmailAddress"
    ] is True
    await mail.book(a, days=6)
    await mail.deliver()
    assert len(sendgrid.accepted) == 2


async def test_mailgun_events_update_status_and_bounces_mark_the_address(mail: MailApp) -> None:
    b = mail.world.b
    mailgun = mail.providers.mailgun
    message_id = await _sent_via_mailgun(mail)
    delivered = mailgun.sign(mailgun.event_for(message_id, "delivered"))
    assert (await mail.webhook("clinic-b", "mail_mailgun", delivered)).status_code == 200
    assert (await mail.messages(b.admin))[0]["status"] == "DELIVERED"
    # A later permanent failure is a bounce (delivered -> bounced is allowed).
    failed = mailgun.event_for(message_id, "failed", severity="permanent", reason="bounce")
    assert (await mail.webhook("clinic-b", "mail_mailgun", mailgun.sign(failed))).status_code == 200
    assert (await mail.messages(b.admin))[0]["status"] == "BOUNCED"
    async with mail.database.session(TenantScope.clinic(b.clinic.id)) as db:
        assert list(await db.scalars(select(EmailBounce.address))) == [b.own_patient.email]


async def test_mailgun_replayed_token_bad_signature_and_stale_timestamp_change_nothing(
    mail: MailApp,
) -> None:
    b = mail.world.b
    mailgun = mail.providers.mailgun
    message_id = await _sent_via_mailgun(mail)
    token = "a" * 50
    opened = mailgun.sign(mailgun.event_for(message_id, "opened"), token=token)
    assert (await mail.webhook("clinic-b", "mail_mailgun", opened)).json()["result"] == "processed"
    # The attacker keeps the signed timestamp/token and swaps in a bounce: the token was seen.
    forged = mailgun.sign(
        mailgun.event_for(message_id, "failed", severity="permanent", reason="bounce"), token=token
    )
    replay = await mail.webhook("clinic-b", "mail_mailgun", forged)
    assert replay.status_code == 200 and replay.json()["result"] == "duplicate"
    # Signed with another key, or too old: refused outright.
    mailgun.signing_key = "not-the-clinic-key"
    wrong = mailgun.sign(mailgun.event_for(message_id, "delivered"))
    assert (await mail.webhook("clinic-b", "mail_mailgun", wrong)).status_code == 400
    mailgun.signing_key = "mailgun-signing-clinic-b-1234"
    stale = mailgun.sign(
        mailgun.event_for(message_id, "delivered"), timestamp=int(time.time()) - 3600
    )
    assert (await mail.webhook("clinic-b", "mail_mailgun", stale)).status_code == 400
    assert (await mail.messages(b.admin))[0]["status"] == "SENT"


async def test_mailgun_same_event_id_with_a_fresh_token_applies_once(mail: MailApp) -> None:
    mailgun = mail.providers.mailgun
    message_id = await _sent_via_mailgun(mail)
    event = mailgun.event_for(message_id, "delivered")
    for _ in range(2):  # Mailgun re-sends the event with a new signature
        assert (
            await mail.webhook("clinic-b", "mail_mailgun", mailgun.sign(event))
        ).status_code == 200
    assert [e.status for e in mail.events].count("delivered") == 1


async def test_a_clinic_webhook_cannot_touch_another_clinic_message(mail: MailApp) -> None:
    a = mail.world.a
    sendgrid_id = await _sent_via_sendgrid(mail)
    mailgun = mail.providers.mailgun
    # B's validly signed Mailgun event naming A's message id matches nothing in B.
    a_message = mail.providers.sendgrid.accepted[-1]["mail"]["custom_args"]["santana_message"]
    await _sent_via_mailgun(mail)
    event = mailgun.event_for(
        mailgun.accepted[-1]["id"], "failed", severity="permanent", reason="bounce"
    )
    event["user-variables"]["santana_message"] = a_message
    event["message"]["headers"]["message-id"] = sendgrid_id
    reply = await mail.webhook("clinic-b", "mail_mailgun", mailgun.sign(event))
    assert reply.status_code == 200
    assert (await mail.messages(a.admin))[0]["status"] == "SENT"
    # A's SendGrid batch posted to B's endpoint fails B's Mailgun verification.
    signed = mail.providers.sendgrid.sign(
        [mail.providers.sendgrid.events_for(sendgrid_id, "bounce")]
    )
    assert (await mail.webhook("clinic-b", "mail_mailgun", signed)).status_code == 400


async def test_demo_fakes_report_delivery_to_the_gateway_like_the_providers(
    mail: MailApp, mail_server: tuple[Any, str]
) -> None:
    """In `make run` the fakes post signed events back; here a recorder stands in for the
    gateway's /webhooks, and the recorded posts must pass the plugins' own verification."""
    board, base_url = mail_server
    posted: list[tuple[str, bytes, dict[str, str]]] = []

    async def record(request: Request) -> Response:
        posted.append((request.url.path, await request.body(), dict(request.headers)))
        return Response(status_code=200)

    board.apps["hooks"] = Starlette(routes=[Route("/{clinic}/{plugin}", record, methods=["POST"])])
    for fake in (mail.providers.sendgrid, mail.providers.mailgun):
        fake.report_to = f"{base_url}/hooks"
    await mail.book(mail.world.a)
    await mail.book(mail.world.b)
    await mail.deliver()
    for _ in range(100):
        if len(posted) == 2:
            break
        await asyncio.sleep(0.05)
    by_plugin = {path.rsplit("/", 1)[1]: (body, headers) for path, body, headers in posted}
    assert set(by_plugin) == {"mail_sendgrid", "mail_mailgun"}
    # Replayed into the real gateway, each verifies and moves its message to delivered.
    for slug, plugin, admin in (
        ("clinic-a", "mail_sendgrid", mail.world.a.admin),
        ("clinic-b", "mail_mailgun", mail.world.b.admin),
    ):
        body, headers = by_plugin[plugin]
        keep = {k: v for k, v in headers.items() if k.startswith("x-twilio") or k == "content-type"}
        reply = await mail.http.post(f"/webhooks/{slug}/{plugin}", content=body, headers=keep)
        assert reply.status_code == 200, reply.text
        assert (await mail.messages(admin))[0]["status"] == "DELIVERED"
