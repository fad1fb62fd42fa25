"""What clinic admins see and set about email: messages and their status, bounced
addresses, the sender name and reply-to, and (in development) the mailbox.

Clinic admins act on their own clinic; platform admins name a clinic explicitly.
Reads of the message list are audited (it names patients' addresses).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from gateway.auth.principal import Principal
from gateway.db.models import Role
from gateway.errors import Forbidden, NotFound, ValidationFailed
from gateway.notifications.mailbox import Mailbox, MailboxEntry
from gateway.notifications.models import (
    ClinicEmailSettings,
    EmailBounce,
    EmailMessageRecord,
    EmailStatus,
)
from gateway.services import audit, validation
from gateway.services.context import ServiceContext

MAX_LIMIT = 200


def _admin(ctx: ServiceContext) -> Principal:
    principal = ctx.require_principal()
    if principal.role not in (Role.CLINIC_ADMIN, Role.PLATFORM_ADMIN):
        raise Forbidden("Only clinic admins see and configure the clinic's email.")
    return principal


def _clinic(ctx: ServiceContext, clinic_id: uuid.UUID | None) -> uuid.UUID:
    principal = _admin(ctx)
    if principal.is_platform_admin:
        if clinic_id is None:
            raise ValidationFailed(
                "Platform admins must say which clinic (clinicId).", field="clinicId"
            )
        return clinic_id
    if clinic_id is not None and clinic_id != principal.clinic_id:
        raise NotFound("Clinic not found.", field="clinicId")
    assert principal.clinic_id is not None
    return principal.clinic_id


async def list_messages(
    ctx: ServiceContext,
    clinic_id: uuid.UUID | None,
    status: EmailStatus | None,
    limit: int,
) -> list[EmailMessageRecord]:
    clinic = _clinic(ctx, clinic_id)
    M = EmailMessageRecord
    query = select(M).where(M.clinic_id == clinic)
    if status is not None:
        query = query.where(M.status == status.value)
    rows = list(
        await ctx.db.scalars(
            query.order_by(M.created_at.desc(), M.id).limit(max(1, min(limit, MAX_LIMIT)))
        )
    )
    audit.record_read(
        ctx, "email.messages_read", clinic_id=clinic, target_type="clinic", target_id=clinic
    )
    return rows


async def list_bounces(ctx: ServiceContext, clinic_id: uuid.UUID | None) -> list[EmailBounce]:
    clinic = _clinic(ctx, clinic_id)
    return list(
        await ctx.db.scalars(
            select(EmailBounce)
            .where(EmailBounce.clinic_id == clinic)
            .order_by(EmailBounce.bounced_at.desc())
        )
    )


async def clear_bounce(ctx: ServiceContext, clinic_id: uuid.UUID | None, address: str) -> bool:
    """The clinic corrected or confirmed the address: mail it again."""
    clinic = _clinic(ctx, clinic_id)
    row = await ctx.db.get(EmailBounce, (clinic, address.strip().lower()))
    if row is None:
        return False
    await ctx.db.delete(row)
    audit.record(
        ctx.db,
        "email.bounce_cleared",
        clinic_id=clinic,
        actor_user_id=ctx.require_principal().user_id,
        target_type="email_bounce",
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return True


async def get_settings(ctx: ServiceContext, clinic_id: uuid.UUID | None) -> ClinicEmailSettings:
    clinic = _clinic(ctx, clinic_id)
    row = await ctx.db.get(ClinicEmailSettings, clinic)
    return row or ClinicEmailSettings(clinic_id=clinic, sender_name=None, reply_to=None)


async def update_settings(
    ctx: ServiceContext, clinic_id: uuid.UUID | None, sender_name: str | None, reply_to: str | None
) -> ClinicEmailSettings:
    clinic = _clinic(ctx, clinic_id)
    name = (sender_name or "").strip() or None
    if name is not None and (len(name) > 100 or any(c in name for c in '\r\n<>"')):
        raise ValidationFailed(
            "Sender name: up to 100 characters, no line breaks, quotes or angle brackets.",
            field="senderName",
        )
    address = validation.email(reply_to, "replyTo") if reply_to and reply_to.strip() else None
    row = await ctx.db.get(ClinicEmailSettings, clinic)
    if row is None:
        row = ClinicEmailSettings(clinic_id=clinic)
        ctx.db.add(row)
    row.sender_name, row.reply_to = name, address
    audit.record(
        ctx.db,
        "email.settings_updated",
        clinic_id=clinic,
        actor_user_id=ctx.require_principal().user_id,
        target_type="clinic",
        target_id=clinic,
        details={"fields": ["senderName", "replyTo"]},
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return row


def mailbox(ctx: ServiceContext, limit: int) -> list[MailboxEntry]:
    """Development only: platform admins see every clinic's captured mail, clinic admins theirs."""
    principal = _admin(ctx)
    if not ctx.settings.dev_mailbox_enabled:
        raise Forbidden("The development mailbox is off (DEV_MAILBOX).")
    if principal.clinic_id is not None:
        # Captured messages hold names and appointment times.
        audit.record_read(
            ctx,
            "email.mailbox_read",
            clinic_id=principal.clinic_id,
            target_type="clinic",
            target_id=principal.clinic_id,
        )
    clinic = None if principal.is_platform_admin else str(principal.clinic_id)
    return Mailbox(ctx.settings.dev_mailbox_dir).list(clinic, max(1, min(limit, MAX_LIMIT)))
