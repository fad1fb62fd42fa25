"""Patient documents: metadata of encrypted stored files.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import enable_tenant_rls, grant_app_role

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient_documents",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename_encrypted", sa.Text(), nullable=True),
        sa.Column("storage_plugin", sa.String(length=40), nullable=False),
        sa.Column("object_key", sa.String(length=128), nullable=False),
        sa.Column("stored_size", sa.Integer(), nullable=False),
        sa.Column("key_encrypted", sa.Text(), nullable=False),
        sa.Column("cipher", sa.String(length=32), nullable=False),
        sa.Column("nonce_prefix", sa.String(length=32), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emr_document_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id", "patient_id"],
            ["patients.clinic_id", "patients.id"],
            name=op.f("fk_patient_documents_clinic_id_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id", "session_id"],
            ["counseling_sessions.clinic_id", "counseling_sessions.id"],
            name=op.f("fk_patient_documents_clinic_id_session_id_counseling_sessions"),
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_patient_documents")),
    )
    with op.batch_alter_table("patient_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patient_documents_patient", ["clinic_id", "patient_id", "created_at"]
        )
        batch_op.create_index("ix_patient_documents_purge_after", ["purge_after"])
    enable_tenant_rls({"patient_documents": "clinic_id"})
    grant_app_role()


def downgrade() -> None:
    # Dropping the table drops its policies with it.
    with op.batch_alter_table("patient_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_documents_purge_after")
        batch_op.drop_index("ix_patient_documents_patient")
    op.drop_table("patient_documents")
