"""The 24 h reminder (sent once, even with several workers) and the payment receipt."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import update

from gateway.crypto import DataCipher
from gateway.db.models import CounselingSession
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.events import EventContext, PaymentChanged, emit
from gateway.notifications.reminders import sweep
from gateway.settings import Settings, load_settings
from schema.ids import to_global_id
from tests.notifications.conftest import MailApp


def _wide(mail: MailApp) -> Settings:
    # The world's upcoming session is tomorrow; a 48 h lead covers it whatever the hour.
    return load_settings(
        app_env="test", database_url=mail.settings.database_url, email_reminder_lead_hours=48
    )


async def test_reminder_is_queued_once_even_when_workers_race(mail: MailApp) -> None:
    a = mail.world.a
    settings = _wide(mail)
    cipher = DataCipher(mail.settings.encryption_keys)
    await mail.book(a, days=3)  # outside the window: its confirmation only
    counts = await asyncio.gather(*(sweep(mail.database, settings, cipher) for _ in range(3)))
    assert sum(counts) == 2  # A's and B's upcoming sessions, each queued by one sweeper
    assert await sweep(mail.database, settings, cipher) == 0
    await mail.deliver()
    reminders = [
        m for m in mail.providers.sendgrid.accepted if m["mail"]["subject"].startswith("Reminder")
    ]
    assert len(reminders) == 1
    assert reminders[0]["to"] == [a.own_patient.email]
    listed = [m for m in await mail.messages(a.admin) if m["notification"] == "session_reminder"]
    assert [m["status"] for m in listed] == ["SENT"]


async def test_rescheduled_session_is_reminded_again_for_its_new_time(mail: MailApp) -> None:
    a = mail.world.a
    settings = _wide(mail)
    cipher = DataCipher(mail.settings.encryption_keys)
    assert await sweep(mail.database, settings, cipher) == 2
    async with mail.database.transaction(TenantScope.clinic(a.clinic.id)) as db:
        await db.execute(
            update(CounselingSession)
            .where(CounselingSession.id == a.upcoming_session.id)
            .values(starts_at=utcnow() + timedelta(hours=5))
        )
    assert await sweep(mail.database, settings, cipher) == 1


async def test_cancelled_and_past_sessions_get_no_reminder(mail: MailApp) -> None:
    a, b = mail.world.a, mail.world.b
    cancel = "mutation($id: ID!) { cancelSession(id: $id) { id } }"
    for clinic in (a, b):
        sid = to_global_id("CounselingSession", clinic.upcoming_session.id)
        await mail.gql.data(cancel, {"id": sid}, user=clinic.admin)
    settings = _wide(mail)
    assert await sweep(mail.database, settings, DataCipher(mail.settings.encryption_keys)) == 0


async def _payment_event(
    mail: MailApp, status: str, previous: str | None, payment_id: uuid.UUID
) -> None:
    a = mail.world.a
    async with mail.database.transaction(TenantScope.clinic(a.clinic.id)) as db:
        ectx = EventContext(
            db=db, cipher=DataCipher(mail.settings.encryption_keys), settings=mail.settings
        )
        await emit(
            ectx,
            PaymentChanged(
                clinic_id=a.clinic.id,
                occurred_at=utcnow(),
                payment_id=payment_id,
                session_id=a.upcoming_session.id,
                patient_id=a.own_patient.id,
                status=status,
                previous_status=previous,
                amount=12000,
                amount_refunded=0,
                currency="USD",
                provider="pay_stripe",
            ),
        )


async def test_payment_succeeded_sends_one_receipt(mail: MailApp) -> None:
    payment_id = uuid.uuid4()
    await _payment_event(mail, "pending", None, payment_id)
    await _payment_event(mail, "succeeded", "pending", payment_id)
    await _payment_event(mail, "succeeded", "requires_action", payment_id)  # reported twice
    await _payment_event(mail, "refunded", "succeeded", payment_id)
    await mail.deliver()
    receipts = [
        m
        for m in mail.providers.sendgrid.accepted
        if m["mail"]["subject"] == "Your payment receipt"
    ]
    assert len(receipts) == 1
    text = receipts[0]["mail"]["content"][0]["value"]
    assert "USD 120.00" in text and str(payment_id) in text


async def test_session_booked_inside_the_window_gets_no_extra_reminder(mail: MailApp) -> None:
    a = mail.world.a
    settings = load_settings(
        app_env="test", database_url=mail.settings.database_url, email_reminder_lead_hours=24 * 30
    )
    cipher = DataCipher(mail.settings.encryption_keys)
    await mail.book(a, days=4)  # booked now, well inside a 30-day window
    # Only the two factory sessions (booked long ago, no confirmation on record) are reminded.
    assert await sweep(mail.database, settings, cipher) == 2
    assert await sweep(mail.database, settings, cipher) == 0
