"""EMR: links between patients and EMR records, pushed appointments.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import enable_tenant_rls, grant_app_role

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emr_patient_links",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("plugin", sa.String(length=40), nullable=False),
        sa.Column("emr_patient_id", sa.String(length=128), nullable=False),
        sa.Column("linked_by", sa.Uuid(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id", "patient_id"],
            ["patients.clinic_id", "patients.id"],
            name=op.f("fk_emr_patient_links_clinic_id_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_emr_patient_links")),
        sa.UniqueConstraint(
            "clinic_id", "patient_id", name=op.f("uq_emr_patient_links_clinic_id_patient_id")
        ),
        sa.UniqueConstraint(
            "clinic_id",
            "plugin",
            "emr_patient_id",
            name=op.f("uq_emr_patient_links_clinic_id_plugin_emr_patient_id"),
        ),
    )
    op.create_table(
        "emr_appointments",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("plugin", sa.String(length=40), nullable=False),
        sa.Column("emr_appointment_id", sa.String(length=128), nullable=True),
        sa.Column("last_status", sa.String(length=24), nullable=True),
        sa.Column("outbox_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id", "session_id"],
            ["counseling_sessions.clinic_id", "counseling_sessions.id"],
            name=op.f("fk_emr_appointments_clinic_id_session_id_counseling_sessions"),
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_emr_appointments")),
        sa.UniqueConstraint(
            "clinic_id",
            "plugin",
            "session_id",
            name=op.f("uq_emr_appointments_clinic_id_plugin_session_id"),
        ),
    )
    enable_tenant_rls({"emr_patient_links": "clinic_id", "emr_appointments": "clinic_id"})
    grant_app_role()


def downgrade() -> None:
    # Dropping the tables drops their policies with them.
    op.drop_table("emr_appointments")
    op.drop_table("emr_patient_links")
