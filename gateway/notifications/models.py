"""Email tables: every notification with its delivery status, bounced addresses,
provider events already applied, and each clinic's sender overrides.

All are tenant-owned (clinic_id NOT NULL, composite keys, RLS on PostgreSQL).
Message bodies are never stored: a row says who was told what kind of thing, and
what became of it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base
from gateway.db.types import UTCDateTime, utcnow


class EmailStatus(enum.StrEnum):
    NOT_SENT = "not_sent"  # no provider, no address or a bounced address: nothing left the gateway
    QUEUED = "queued"  # in the outbox, waiting for the clinic's provider
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the receiving server accepted it
    BOUNCED = "bounced"  # the receiving server refused it; the address is marked
    DROPPED = "dropped"  # the provider would not send it (suppression list, spam report …)
    FAILED = "failed"  # the provider refused the request (dead-lettered with the reason)


class EmailMessageRecord(Base):
    __tablename__ = "email_messages"
    __table_args__ = (
        # Notifications that must go out once (a reminder) carry a key; the database
        # refuses a second row even when several workers race.
        UniqueConstraint("clinic_id", "dedupe_key"),
        Index("ix_email_messages_clinic_created", "clinic_id", "created_at"),
        Index("ix_email_messages_clinic_outbox", "clinic_id", "outbox_id"),
        Index("ix_email_messages_clinic_provider_id", "clinic_id", "provider_message_id"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    notification: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str | None] = mapped_column(String(320), nullable=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    outbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EmailBounce(Base):
    """An address a provider reported as bounced: shown to the clinic, not mailed again."""

    __tablename__ = "email_bounces"

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower-case
    provider: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    bounced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailProviderEvent(Base):
    """A provider event (by its own id) already applied: a batch redelivered changes nothing."""

    __tablename__ = "email_provider_events"

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClinicEmailSettings(Base):
    """A clinic's own sender name and reply-to address; the plugin config keeps the From address."""

    __tablename__ = "clinic_email_settings"

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    sender_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


TENANT_TABLES = {
    "email_messages": "clinic_id",
    "email_bounces": "clinic_id",
    "email_provider_events": "clinic_id",
    "clinic_email_settings": "clinic_id",
}
