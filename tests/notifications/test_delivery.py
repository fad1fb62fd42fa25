"""Delivery through the outbox: provider down then up, Retry-After, rejections, no duplicates."""

from __future__ import annotations

from datetime import timedelta

from gateway.db.types import utcnow
from gateway.integrations.models import OutboxStatus
from tests.notifications.conftest import MailApp


async def test_provider_down_then_up_loses_nothing_and_sends_once(mail: MailApp) -> None:
    a = mail.world.a
    sendgrid = mail.providers.sendgrid
    await mail.book(a, days=2)
    await mail.book(a, days=3)
    sendgrid.down = True
    for _ in range(3):  # three failed rounds: 503 each time
        stats = await mail.deliver()
        assert stats.retried == 2 and stats.delivered == 0
        await mail.make_due()
    assert sendgrid.accepted == []
    assert {m["status"] for m in await mail.messages(a.admin)} == {"QUEUED"}

    sendgrid.down = False
    assert (await mail.deliver()).delivered == 2
    await mail.make_due()
    assert (await mail.deliver()).handled == 0  # nothing left to send, nothing sent twice
    assert len(sendgrid.accepted) == 2
    assert {m["status"] for m in await mail.messages(a.admin)} == {"SENT"}
    assert sendgrid.attempts == 3 * 2 + 2


async def test_rate_limited_send_waits_at_least_retry_after(mail: MailApp) -> None:
    b = mail.world.b
    mailgun = mail.providers.mailgun
    mailgun.fail_next, mailgun.fail_status, mailgun.retry_after = 1, 429, "120"
    await mail.book(b)
    before = utcnow()
    stats = await mail.deliver()
    assert stats.retried == 1
    [row] = await mail.outbox(b.clinic.id)
    assert row.status == OutboxStatus.PENDING
    assert row.next_attempt_at >= before + timedelta(seconds=120)
    assert "rate-limited" in (row.last_error or "")
    # Not due yet: a second worker round sends nothing.
    assert (await mail.deliver()).handled == 0
    await mail.make_due()
    assert (await mail.deliver()).delivered == 1
    assert len(mailgun.accepted) == 1


async def test_rejected_message_is_dead_lettered_with_the_reason(mail: MailApp) -> None:
    a = mail.world.a
    mail.providers.sendgrid.fail_next, mail.providers.sendgrid.fail_status = 1, 400
    await mail.book(a)
    stats = await mail.deliver()
    assert stats.dead == 1
    [message] = await mail.messages(a.admin)
    assert message["status"] == "FAILED"
    assert message["statusReason"].startswith("SendGrid rejected the message (400)")
    [row] = await mail.outbox(a.clinic.id)
    assert row.status == OutboxStatus.DEAD
    # No address or content in the reason the clinic and the operators see.
    assert a.own_patient.email not in message["statusReason"]


async def test_wrong_api_key_is_dead_lettered_not_retried_forever(mail: MailApp) -> None:
    a = mail.world.a
    mail.providers.sendgrid.api_keys = {"SG.some-other-key"}
    await mail.book(a)
    assert (await mail.deliver()).dead == 1
    [message] = await mail.messages(a.admin)
    assert message["status"] == "FAILED"
    assert "refused the API key (401)" in message["statusReason"]


async def test_status_changes_are_emitted_after_commit(mail: MailApp) -> None:
    a = mail.world.a
    await mail.book(a)
    await mail.deliver()
    assert [(e.notification, e.previous_status, e.status) for e in mail.events] == [
        ("session_booked", None, "queued"),
        ("session_booked", "queued", "sent"),
    ]
    assert mail.events[0].clinic_id == a.clinic.id


async def test_reschedule_and_cancel_send_their_own_notifications(mail: MailApp) -> None:
    a = mail.world.a
    session_id = await mail.book(a)
    move = """mutation($id: ID!, $at: DateTime!) {
      rescheduleSession(id: $id, startsAt: $at) { id } }"""
    cancel = """mutation($id: ID!) { cancelSession(id: $id, reason: "feeling unwell") { id } }"""
    later = (utcnow() + timedelta(days=9)).replace(hour=11, minute=0, second=0, microsecond=0)
    await mail.gql.data(move, {"id": session_id, "at": later.isoformat()}, user=a.admin)
    await mail.gql.data(cancel, {"id": session_id}, user=a.admin)
    await mail.deliver()
    subjects = [m["mail"]["subject"] for m in mail.providers.sendgrid.accepted]
    assert sorted(subjects) == sorted(
        ["Your session is booked", "Your session has moved", "Your session has been cancelled"]
    )
    cancelled = next(
        m for m in mail.providers.sendgrid.accepted if "cancelled" in m["mail"]["subject"]
    )
    body = " ".join(c["value"] for c in cancelled["mail"]["content"])
    assert "unwell" not in body  # the cancellation reason stays in the clinic
