"""What became of each email: outbox outcomes and provider events move its status.

- the outbox marks a `send_email` row delivered -> the message is `sent` (with the
  provider's message id); dead-lettered -> `failed` with the reason;
- a provider webhook (SendGrid, Mailgun) reports delivered / bounced / dropped:
  plugins turn their events into `ProviderEmailEvent`s and call `apply_provider_events`
  inside `handle_webhook`. Each event id is applied once; a bounce marks the address.

Every change of status emits `EmailStatusChanged` in the same transaction.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.crypto import DataCipher
from gateway.db.types import utcnow
from gateway.events import EmailStatusChanged, EventContext, emit
from gateway.integrations.models import OutboxMessage
from gateway.integrations.outbox import on_dead, on_delivered
from gateway.integrations.types import PluginContext, SentEmail
from gateway.notifications.models import (
    EmailBounce,
    EmailMessageRecord,
    EmailProviderEvent,
    EmailStatus,
)
from gateway.notifications.states import can_move
from gateway.settings import load_settings

log = logging.getLogger("santana.notifications")

# The tag every queued email carries, so provider events find their message again.
MESSAGE_TAG = "santana_message"
CLINIC_TAG = "santana_clinic"


async def set_status(
    ectx: EventContext,
    row: EmailMessageRecord,
    status: EmailStatus,
    reason: str | None = None,
) -> bool:
    """Move `row` to `status` if the state machine allows it; tell the listeners."""
    previous = row.status
    if previous == status or not can_move(previous, status):
        return False
    row.status = status.value
    row.status_reason = (reason or "")[:500] or None
    row.updated_at = utcnow()
    await emit(
        ectx,
        EmailStatusChanged(
            clinic_id=row.clinic_id,
            occurred_at=row.updated_at,
            message_id=row.id,
            notification=row.notification,
            status=status.value,
            previous_status=previous,
            user_id=row.user_id,
            patient_id=row.patient_id,
        ),
    )
    return True


@functools.cache
def _process_tools() -> tuple[Any, DataCipher]:
    settings = load_settings()
    return settings, DataCipher(settings.encryption_keys)


def _outcome_context(db: AsyncSession) -> EventContext:
    # Outbox outcome handlers receive only the transaction; listeners of email events
    # need no secrets, so the process's own settings are enough.
    settings, cipher = _process_tools()
    return EventContext(db=db, cipher=cipher, settings=settings)


async def _message_for(db: AsyncSession, outbox: OutboxMessage) -> EmailMessageRecord | None:
    return await db.scalar(
        select(EmailMessageRecord).where(
            EmailMessageRecord.clinic_id == outbox.clinic_id,
            EmailMessageRecord.outbox_id == outbox.id,
        )
    )


@on_delivered("send_email")
async def _sent(db: AsyncSession, outbox: OutboxMessage, args: dict[str, Any], result: Any) -> None:
    row = await _message_for(db, outbox)
    if row is None:
        return  # an email queued by something other than the notification service
    if isinstance(result, SentEmail):
        row.provider_message_id = result.provider_message_id[:255]
    row.provider = outbox.plugin or row.provider
    await set_status(_outcome_context(db), row, EmailStatus.SENT)


@on_dead("send_email")
async def _failed(
    db: AsyncSession, outbox: OutboxMessage, args: dict[str, Any] | None, reason: str
) -> None:
    row = await _message_for(db, outbox)
    if row is None:
        return
    row.provider = outbox.plugin or row.provider
    await set_status(_outcome_context(db), row, EmailStatus.FAILED, reason)


# --- provider events ------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderEmailEvent:
    """One delivery event, in the gateway's terms (no message content)."""

    event_id: str
    status: EmailStatus | None  # None: an event that changes nothing (opened, deferred …)
    message_id: str | None = None  # our id, from the message's tags
    provider_message_id: str | None = None
    recipient: str | None = None
    reason: str | None = None


@dataclass
class AppliedEvents:
    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0


async def _find(
    db: AsyncSession, clinic_id: uuid.UUID, event: ProviderEmailEvent
) -> EmailMessageRecord | None:
    M = EmailMessageRecord
    if event.message_id:
        try:
            ours = uuid.UUID(event.message_id)
        except ValueError:
            ours = None
        if ours is not None:
            row = await db.get(M, (clinic_id, ours))
            if row is not None:
                return row
    if event.provider_message_id:
        return await db.scalar(
            select(M).where(
                M.clinic_id == clinic_id, M.provider_message_id == event.provider_message_id
            )
        )
    return None


async def apply_provider_events(
    ctx: PluginContext, events: list[ProviderEmailEvent]
) -> AppliedEvents:
    """Apply verified events inside `handle_webhook` (ctx.db, ctx.events)."""
    db, ectx, clinic_id = ctx.db, ctx.events, ctx.clinic_id
    if db is None or ectx is None or clinic_id is None:
        raise RuntimeError("apply_provider_events runs inside handle_webhook only")
    outcome = AppliedEvents()
    seen_now: set[str] = set()
    for event in events:
        key = event.event_id[:255]
        if key in seen_now or await _seen(db, clinic_id, ctx.plugin, key):
            outcome.duplicates += 1
            continue
        seen_now.add(key)
        row = await _find(db, clinic_id, event)
        db.add(
            EmailProviderEvent(
                clinic_id=clinic_id,
                provider=ctx.plugin,
                event_id=key,
                message_id=row.id if row is not None else None,
            )
        )
        if row is None:
            outcome.unmatched += 1
            continue
        if event.status is None:
            continue
        await set_status(ectx, row, event.status, event.reason)
        if event.status is EmailStatus.BOUNCED:
            await _mark_bounced(
                db, clinic_id, ctx.plugin, event.recipient or row.recipient, event.reason
            )
        outcome.applied += 1
    if outcome.unmatched:
        ctx.record_event("email_event_unmatched", details={"count": outcome.unmatched})
    return outcome


async def _seen(db: AsyncSession, clinic_id: uuid.UUID, provider: str, event_id: str) -> bool:
    row = await db.get(EmailProviderEvent, (clinic_id, provider, event_id))
    return row is not None


async def _mark_bounced(
    db: AsyncSession, clinic_id: uuid.UUID, provider: str, address: str | None, reason: str | None
) -> None:
    if not address:
        return
    address = address.strip().lower()[:320]
    row = await db.get(EmailBounce, (clinic_id, address))
    if row is None:
        db.add(EmailBounce(clinic_id=clinic_id, address=address, provider=provider, reason=reason))
    else:
        row.provider, row.reason, row.bounced_at = provider, reason, utcnow()
