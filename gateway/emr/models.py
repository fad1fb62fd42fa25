"""Tables of the EMR feature: which EMR record a patient is linked to, and which
EMR Appointment a counseling session was pushed as.

Both are tenant-owned (clinic_id NOT NULL, composite key, RLS on PostgreSQL).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base
from gateway.db.types import UTCDateTime, utcnow


class EmrPatientLink(Base):
    """One patient of ours linked to one EMR Patient resource.

    Unique both ways per clinic and EMR plugin, so importing the same EMR patient
    twice finds the existing link instead of creating a second patient.
    """

    __tablename__ = "emr_patient_links"
    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "patient_id"], ["patients.clinic_id", "patients.id"]),
        UniqueConstraint("clinic_id", "patient_id"),
        UniqueConstraint("clinic_id", "plugin", "emr_patient_id"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    plugin: Mapped[str] = mapped_column(String(40))  # the EMR plugin's name
    emr_patient_id: Mapped[str] = mapped_column(String(128))  # FHIR Patient.id
    linked_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EmrAppointment(Base):
    """The EMR Appointment a session is pushed as; a reschedule or cancel updates it.

    Created when the first push is queued. `outbox_id` names the latest queued push:
    a newer change replaces it while it waits, so pushes of one session never race.
    """

    __tablename__ = "emr_appointments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["clinic_id", "session_id"], ["counseling_sessions.clinic_id", "counseling_sessions.id"]
        ),
        UniqueConstraint("clinic_id", "plugin", "session_id"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    plugin: Mapped[str] = mapped_column(String(40))
    # FHIR Appointment.id, once the EMR created it.
    emr_appointment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # FHIR Appointment.status the EMR last accepted.
    last_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    outbox_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
