"""Render a notification and queue it through the clinic's email plugin.

`notify` runs inside the caller's transaction: the email row, its outbox row and
the audit row commit with the change that caused them, or not at all. The outbox
row id is the plugin's idempotency key, so a retry never sends a second copy.

A clinic with no email plugin still works: the notification is recorded as
`not_sent` with the reason (and, with DEV_MAILBOX on, captured in the development
mailbox so a developer can read it).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Clinic
from gateway.db.types import utcnow
from gateway.events import EmailStatusChanged, EventContext, emit
from gateway.integrations.models import Integration
from gateway.integrations.outbox import enqueue
from gateway.integrations.types import EmailMessage, Kind
from gateway.notifications.delivery import CLINIC_TAG, MESSAGE_TAG
from gateway.notifications.mailbox import Mailbox, MailboxEntry
from gateway.notifications.models import (
    ClinicEmailSettings,
    EmailBounce,
    EmailMessageRecord,
    EmailStatus,
)
from gateway.notifications.render import Notification, render
from gateway.services import audit

log = logging.getLogger("santana.notifications")

NO_PROVIDER = "No email provider is enabled for this clinic."
NO_ADDRESS = "No email address on file."
BOUNCED = "The address bounced before; correct it to send again."


def format_time(moment: datetime, timezone: str) -> str:
    """The clinic's local time, with its zone named so nobody has to guess."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone, timezone = ZoneInfo("UTC"), "UTC"
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({timezone})"


def format_money(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:,.2f}"


async def email_provider(db: AsyncSession, clinic_id: uuid.UUID) -> str | None:
    return await db.scalar(
        select(Integration.plugin).where(
            Integration.clinic_id == clinic_id,
            Integration.kind == Kind.EMAIL.value,
            Integration.enabled.is_(True),
        )
    )


async def notify(
    ectx: EventContext,
    clinic_id: uuid.UUID,
    notification: Notification,
    *,
    to: str | None,
    first_name: str,
    context: dict[str, Any],
    user_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    dedupe_key: str | None = None,
) -> EmailMessageRecord | None:
    """Queue one notification; None when `dedupe_key` says it was queued before."""
    db = ectx.db
    M = EmailMessageRecord
    if dedupe_key is not None:
        existing = await db.scalar(
            select(M.id).where(M.clinic_id == clinic_id, M.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return None
    clinic = await db.get(Clinic, clinic_id)
    if clinic is None:
        raise ValueError("unknown clinic")
    overrides = await db.get(ClinicEmailSettings, clinic_id)
    rendered = render(
        notification, {"clinic_name": clinic.name, "first_name": first_name, **context}
    )
    address = to.strip().lower() if to else None
    row = M(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        notification=notification.value,
        recipient=address,
        user_id=user_id,
        patient_id=patient_id,
        session_id=session_id,
        status=EmailStatus.QUEUED.value,
        dedupe_key=dedupe_key,
    )
    message = EmailMessage(
        to=[address or "unknown@invalid"],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        reply_to=overrides.reply_to if overrides else None,
        sender_name=(overrides.sender_name if overrides else None) or clinic.name,
        tags={
            MESSAGE_TAG: str(row.id),
            CLINIC_TAG: str(clinic_id),
            "notification": notification.value,
        },
    )
    plugin = await email_provider(db, clinic_id)
    reason = None
    if address is None:
        reason = NO_ADDRESS
    elif await db.get(EmailBounce, (clinic_id, address)) is not None:
        reason = BOUNCED
    elif plugin is None:
        reason = NO_PROVIDER
        if ectx.settings.dev_mailbox_enabled:
            _capture(ectx, row, message)
    if reason is not None:
        row.status, row.status_reason = EmailStatus.NOT_SENT.value, reason
    else:
        outbox = enqueue(
            db,
            ectx.cipher,
            clinic_id,
            Kind.EMAIL,
            "send_email",
            {"message": message},
            actor_user_id=ectx.actor_user_id,
            request_id=ectx.request_id,
        )
        row.outbox_id, row.provider = outbox.id, plugin
    db.add(row)
    # The email carries the person's name and appointment: its queuing is a PHI write.
    audit.record(
        db,
        "email.queued" if reason is None else "email.not_sent",
        clinic_id=clinic_id,
        actor_user_id=ectx.actor_user_id,
        target_type="email",
        target_id=row.id,
        details={"notification": notification.value, "provider": plugin},
        request_id=ectx.request_id,
        patient_id=patient_id,
    )
    await emit(
        ectx,
        EmailStatusChanged(
            clinic_id=clinic_id,
            occurred_at=utcnow(),
            message_id=row.id,
            notification=notification.value,
            status=row.status,
            previous_status=None,
            user_id=user_id,
            patient_id=patient_id,
        ),
    )
    return row


def _capture(ectx: EventContext, row: EmailMessageRecord, message: EmailMessage) -> None:
    """Development only: keep what would have been sent, for the developer to read."""
    entry = MailboxEntry(
        id=str(row.id),
        clinic_id=str(row.clinic_id),
        via="no provider",
        to=list(message.to),
        subject=message.subject,
        text=message.text,
        html=message.html,
        sender=message.sender_name,
        reply_to=message.reply_to,
        tags=dict(message.tags),
    )
    try:
        Mailbox(ectx.settings.dev_mailbox_dir).put(entry)
    except OSError as exc:  # the mailbox is a convenience; the notification row stands
        log.warning("development mailbox not writable: %s", type(exc).__name__)
