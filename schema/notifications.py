"""GraphQL for email: delivery status for clinic admins, bounced addresses, the clinic's
sender name and reply-to, the development mailbox, password reset and invitations.

Importing this module also registers the notification listeners (sessions, payments)
and the outbox outcome handlers of `send_email`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry

import gateway.notifications.delivery  # noqa: F401  (outbox outcome handlers)
import gateway.notifications.listeners  # noqa: F401  (SessionChanged / PaymentChanged)
from gateway.notifications import admin
from gateway.notifications import models as email_models
from gateway.services import invitations, password_reset
from schema.context import Info
from schema.ids import from_global_id, to_global_id
from schema.mutations.auth import _auth_limit
from schema.transactions import Transactional
from schema.types import User

RESET_REQUESTED = (
    "If an account uses that address, a reset link is on its way. It works once and expires soon."
)


@strawberry.enum(description="Where an email stands (see docs/email.md for the state machine)")
class EmailStatus(Enum):
    NOT_SENT = "not_sent"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    FAILED = "failed"


@strawberry.type(description="One notification email and its delivery status (never its content)")
class EmailMessage:
    id: strawberry.ID
    notification: str = strawberry.field(description="session_booked, password_reset, …")
    recipient: str | None
    status: EmailStatus
    status_reason: str | None = strawberry.field(
        description="Why it was not sent, failed, bounced or dropped"
    )
    provider: str | None = strawberry.field(description="The email plugin, e.g. mail_sendgrid")
    provider_message_id: str | None
    patient_id: strawberry.ID | None
    session_id: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: email_models.EmailMessageRecord) -> EmailMessage:
        return cls(
            id=to_global_id("EmailMessage", m.id),
            notification=m.notification,
            recipient=m.recipient,
            status=EmailStatus(m.status),
            status_reason=m.status_reason,
            provider=m.provider,
            provider_message_id=m.provider_message_id,
            patient_id=to_global_id("Patient", m.patient_id) if m.patient_id else None,
            session_id=to_global_id("CounselingSession", m.session_id) if m.session_id else None,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


@strawberry.type(description="An address a provider reported as bounced; it is not mailed again")
class BouncedEmailAddress:
    address: str
    provider: str
    reason: str | None
    bounced_at: datetime


@strawberry.type(description="How the clinic's emails present themselves")
class EmailSettings:
    sender_name: str | None = strawberry.field(
        description="Shown as the sender (default: clinic name)"
    )
    reply_to: str | None = strawberry.field(description="Where replies go (default: none)")


@strawberry.type(description="A message captured by the development mailbox (development only)")
class MailboxMessage:
    id: str
    clinic_id: strawberry.ID | None
    via: str = strawberry.field(description="mail_devbox, a provider fake, or 'no provider'")
    to: list[str]
    subject: str
    text: str
    html: str | None
    sender: str | None
    reply_to: str | None
    received_at: str


def _clinic_id(value: strawberry.ID | None) -> uuid.UUID | None:
    return from_global_id(value, "Clinic", "clinicId") if value else None


def _clinic_gid(value: str | None) -> strawberry.ID | None:
    """A captured message names its clinic as the sender tagged it; anything else shows as none."""
    try:
        return strawberry.ID(to_global_id("Clinic", uuid.UUID(value))) if value else None
    except ValueError:
        return None


@strawberry.type
class NotificationQueries:
    @strawberry.field(
        description="The clinic's emails, newest first, with delivery status (admins)"
    )
    async def email_messages(
        self,
        info: Info,
        status: EmailStatus | None = None,
        limit: int = 50,
        clinic_id: strawberry.ID | None = None,
    ) -> list[EmailMessage]:
        rows = await admin.list_messages(
            info.context,
            _clinic_id(clinic_id),
            email_models.EmailStatus(status.value) if status else None,
            limit,
        )
        return [EmailMessage.from_model(row) for row in rows]

    @strawberry.field(description="Addresses that bounced; correct them or clear them (admins)")
    async def bounced_email_addresses(
        self, info: Info, clinic_id: strawberry.ID | None = None
    ) -> list[BouncedEmailAddress]:
        rows = await admin.list_bounces(info.context, _clinic_id(clinic_id))
        return [
            BouncedEmailAddress(
                address=r.address, provider=r.provider, reason=r.reason, bounced_at=r.bounced_at
            )
            for r in rows
        ]

    @strawberry.field(description="The clinic's sender name and reply-to address (admins)")
    async def email_settings(
        self, info: Info, clinic_id: strawberry.ID | None = None
    ) -> EmailSettings:
        row = await admin.get_settings(info.context, _clinic_id(clinic_id))
        return EmailSettings(sender_name=row.sender_name, reply_to=row.reply_to)

    @strawberry.field(description="Development only: emails captured instead of sent (admins)")
    async def dev_mailbox(self, info: Info, limit: int = 50) -> list[MailboxMessage]:
        entries = admin.mailbox(info.context, limit)
        return [
            MailboxMessage(
                id=e.id,
                clinic_id=_clinic_gid(e.clinic_id),
                via=e.via,
                to=e.to,
                subject=e.subject,
                text=e.text,
                html=e.html,
                sender=e.sender,
                reply_to=e.reply_to,
                received_at=e.received_at,
            )
            for e in entries
        ]


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(
        description="Email a single-use password-reset link; the answer is the same for any address"
    )
    async def request_password_reset(self, info: Info, email: str) -> str:
        await _auth_limit(info, email)
        password_reset.request_password_reset_in_background(info.context, email)
        return RESET_REQUESTED

    @strawberry.mutation(
        description="Set a new password with a reset link's token; ends every login"
    )
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        await _auth_limit(info, None)
        await password_reset.reset_password(info.context, token, new_password)
        return True

    @strawberry.mutation(
        extensions=[Transactional()], description="Email a fresh invitation link (admins)"
    )
    async def resend_invitation(self, info: Info, user_id: strawberry.ID) -> User:
        user = await invitations.resend_invitation(
            info.context, from_global_id(user_id, "User", "userId")
        )
        return User.from_model(user)

    @strawberry.mutation(
        extensions=[Transactional()],
        description="Set the clinic's sender name and reply-to (admins)",
    )
    async def update_email_settings(
        self,
        info: Info,
        sender_name: str | None = None,
        reply_to: str | None = None,
        clinic_id: strawberry.ID | None = None,
    ) -> EmailSettings:
        row = await admin.update_settings(
            info.context, _clinic_id(clinic_id), sender_name, reply_to
        )
        return EmailSettings(sender_name=row.sender_name, reply_to=row.reply_to)

    @strawberry.mutation(
        extensions=[Transactional()], description="Mail a bounced address again (admins)"
    )
    async def clear_bounced_email_address(
        self, info: Info, address: str, clinic_id: strawberry.ID | None = None
    ) -> bool:
        return await admin.clear_bounce(info.context, _clinic_id(clinic_id), address)
