"""The patient_documents table: metadata of one encrypted stored file per row.

The file itself lives in a storage plugin under `object_key` (random, no PHI).
`key_encrypted` is the object's AES-256-GCM key wrapped by DataCipher, so
`santana rotate-keys` (every `*_encrypted` column) re-wraps keys and never
touches the stored objects. A deleted document keeps its row until the purge
job removes object and row after DOCUMENT_RETENTION_DAYS.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base
from gateway.db.types import UTCDateTime, utcnow


class DocumentKind(enum.StrEnum):
    CONSENT = "consent"
    INTAKE = "intake"
    LAB_REPORT = "lab_report"
    OTHER = "other"


class PatientDocument(Base):
    __tablename__ = "patient_documents"
    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "patient_id"], ["patients.clinic_id", "patients.id"]),
        ForeignKeyConstraint(
            ["clinic_id", "session_id"], ["counseling_sessions.clinic_id", "counseling_sessions.id"]
        ),
        Index("ix_patient_documents_patient", "clinic_id", "patient_id", "created_at"),
        Index("ix_patient_documents_purge_after", "purge_after"),
    )

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(64))  # sniffed from the bytes
    size: Mapped[int] = mapped_column(Integer)  # plaintext bytes
    sha256: Mapped[str] = mapped_column(String(64))  # of the plaintext
    # The uploader's file name may name the patient: encrypted like any PHI.
    filename_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    storage_plugin: Mapped[str] = mapped_column(String(40))
    object_key: Mapped[str] = mapped_column(String(128))
    stored_size: Mapped[int] = mapped_column(Integer)  # ciphertext bytes
    key_encrypted: Mapped[str] = mapped_column(Text)  # the wrapped per-object key
    cipher: Mapped[str] = mapped_column(String(32))  # format of the stored object
    nonce_prefix: Mapped[str] = mapped_column(String(32))  # hex; chunk nonces derive from it
    chunk_size: Mapped[int] = mapped_column(Integer)  # plaintext bytes per encrypted chunk
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    emr_document_id: Mapped[str | None] = mapped_column(String(255), nullable=True)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
