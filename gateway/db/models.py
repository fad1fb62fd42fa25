"""SQLAlchemy models of the core: clinics, users, patients, counseling sessions, audit.

Tenant-owned tables carry `clinic_id NOT NULL` and a composite primary key
(clinic_id, id): every foreign key between tenant rows includes the clinic, so the
database itself refuses a session that points at another clinic's patient, and a
later distribution by clinic_id (Citus) needs no key changes.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.db.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK, so adding a value is a cheap migration.
    return Enum(
        cls, name=name, native_enum=False, values_callable=lambda e: [m.value for m in e], length=32
    )


class Role(str, enum.Enum):
    PLATFORM_ADMIN = "platform_admin"
    CLINIC_ADMIN = "clinic_admin"
    COUNSELOR = "counselor"
    PATIENT = "patient"


class Modality(str, enum.Enum):
    IN_PERSON = "in_person"
    VIDEO = "video"
    PHONE = "phone"


class SessionStatus(str, enum.Enum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # What the clinic pays the platform per month, in minor units of `currency` (MRR).
    monthly_plan_fee: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Bumped by every committed write to the clinic's data (gateway/response_cache/versions.py);
    # cached responses are only served for the version they were built from.
    data_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # Lets tenant tables reference (clinic_id, user id) so a counselor of
        # another clinic cannot be attached to a session, even by a bug.
        UniqueConstraint("clinic_id", "id"),
        Index("ix_users_clinic_role", "clinic_id", "role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clinics.id"), nullable=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Two-factor authentication (TOTP): secrets encrypted with DataCipher; the last
    # accepted time step stops a code from being replayed.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_pending_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RecoveryCode(Base):
    """Single-use 2FA recovery codes, stored as SHA-256 hashes (shown to the user once)."""

    __tablename__ = "user_recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "user_id"], ["users.clinic_id", "users.id"]),
        Index("ix_patients_clinic_name", "clinic_id", "last_name", "first_name", "id"),
        Index(
            "uq_patients_clinic_emr",
            "clinic_id",
            "emr_system",
            "emr_id",
            unique=True,
            sqlite_where=text("emr_id IS NOT NULL"),
            postgresql_where=text("emr_id IS NOT NULL"),
        ),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    emr_system: Mapped[str | None] = mapped_column(String(40), nullable=True)
    emr_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CounselingSession(Base):
    __tablename__ = "counseling_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "patient_id"], ["patients.clinic_id", "patients.id"]),
        ForeignKeyConstraint(["clinic_id", "counselor_id"], ["users.clinic_id", "users.id"]),
        Index("ix_sessions_clinic_start", "clinic_id", "starts_at"),
        Index("ix_sessions_counselor_start", "clinic_id", "counselor_id", "starts_at"),
        Index("ix_sessions_patient_start", "clinic_id", "patient_id", "starts_at"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    counselor_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Stored (not derived) so overlap checks and day views are index range scans.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    modality: Mapped[Modality] = mapped_column(_enum(Modality, "session_modality"))
    status: Mapped[SessionStatus] = mapped_column(
        _enum(SessionStatus, "session_status"), default=SessionStatus.SCHEDULED
    )
    fee_amount: Mapped[int] = mapped_column(Integer, default=0)  # minor units (cents)
    currency: Mapped[str] = mapped_column(String(3))
    notes_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RefreshToken(Base):
    """Opaque refresh tokens, stored as SHA-256 hashes, rotated on every use.

    Tokens of one login share a family; presenting a token that was already
    rotated revokes the whole family (a stolen token is then useless).
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserToken(Base):
    """Single-use tokens mailed or handed to a user: invitations, password resets."""

    __tablename__ = "user_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    purpose: Mapped[str] = mapped_column(String(32))  # invite | password_reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what, to which record, with what outcome. Never PHI in `details`."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_clinic_time", "clinic_id", "created_at"),
        Index("ix_audit_clinic_patient_time", "clinic_id", "patient_id", "created_at"),
        Index("ix_audit_clinic_actor_time", "clinic_id", "actor_user_id", "created_at"),
        # One row per position in a clinic's chain: a fork cannot even be stored.
        Index("uq_audit_clinic_seq", "clinic_id", "seq", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The patient the event concerns, if any (filterable without parsing `details`).
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # Hash chain per clinic (gateway.services.audit_chain): position, previous row's
    # hash, and the hash of this row's content plus `prev_hash`.
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    row_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditChainHead(Base):
    """The last link of each clinic's audit chain; writers lock it to append in order."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)  # clinic id, or "platform"
    clinic_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Tables whose rows belong to one clinic; RLS policies are created on each.
# `clinics` is keyed by `id`; the others by `clinic_id`.
TENANT_TABLES: dict[str, str] = {
    "clinics": "id",
    "users": "clinic_id",
    "patients": "clinic_id",
    "counseling_sessions": "clinic_id",
    "refresh_tokens": "clinic_id",
    "user_tokens": "clinic_id",
    "audit_events": "clinic_id",
}
