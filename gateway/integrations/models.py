"""Tables of the integration layer: per-clinic integrations, received webhooks, the outbox.

All three are tenant-owned (clinic_id NOT NULL, RLS on PostgreSQL) and keyed
(clinic_id, id) like the core tables, so a move to Citus needs no key changes.
They use the core `Base`, so migrations and the test TRUNCATE see them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base
from gateway.db.types import UTCDateTime, utcnow


class IntegrationStatus:
    ACTIVE = "active"  # enabled, last check passed (or not yet failed)
    ERROR = "error"  # enabled, last check or call failed (see last_error)
    DISABLED = "disabled"


class Integration(Base):
    """One plugin's configuration for one clinic. At most one enabled per kind per clinic."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("clinic_id", "plugin"),
        Index(
            "uq_integrations_enabled_kind",
            "clinic_id",
            "kind",
            unique=True,
            sqlite_where=text("enabled"),
            postgresql_where=text("enabled"),
        ),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    plugin: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # non-secret fields only
    secrets_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=IntegrationStatus.ACTIVE)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookReceipt(Base):
    """A verified inbound event; the unique key makes a redelivery a no-op."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("clinic_id", "plugin", "provider_event_id"),)

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    plugin: Mapped[str] = mapped_column(String(40))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up: rejected by the provider, or out of attempts


class OutboxMessage(Base):
    """A plugin call queued in the business transaction and delivered by the worker."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    hook: Mapped[str] = mapped_column(String(64))
    payload_encrypted: Mapped[str] = mapped_column(Text)  # arguments may hold PHI
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    plugin: Mapped[str | None] = mapped_column(String(40), nullable=True)  # who delivered it
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


TENANT_TABLES: dict[str, str] = {
    "integrations": "clinic_id",
    "webhook_events": "clinic_id",
    "outbox": "clinic_id",
}
