"""The payments table: one row per attempt to collect a counseling session's fee.

Tenant-owned like the core tables (clinic_id NOT NULL, composite key, RLS on
PostgreSQL). A row exists only once the provider accepted the attempt, so every
row has a provider reference.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base
from gateway.db.types import UTCDateTime, utcnow


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # created with the provider, nothing collected yet
    REQUIRES_ACTION = "requires_action"  # the payer must act (3-D Secure, UPI approval …)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # this attempt was declined; a new attempt may follow
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["clinic_id", "session_id"], ["counseling_sessions.clinic_id", "counseling_sessions.id"]
        ),
        ForeignKeyConstraint(["clinic_id", "patient_id"], ["patients.clinic_id", "patients.id"]),
        UniqueConstraint("clinic_id", "session_id", "attempt"),
        UniqueConstraint("clinic_id", "provider", "provider_reference"),
        Index("ix_payments_clinic_created", "clinic_id", "created_at"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Derived from (clinic, session, attempt): a retried request names the same payment.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    attempt: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)  # minor units, from the session's fee
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(40))  # the plugin's name
    # The provider's checkout object (Stripe PaymentIntent, Razorpay order).
    provider_reference: Mapped[str] = mapped_column(String(255))
    # The captured payment when the provider names it apart (Razorpay pay_…); refunds use it.
    provider_charge_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.PENDING.value)
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
