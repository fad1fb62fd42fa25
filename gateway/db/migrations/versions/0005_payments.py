"""Payments: one row per attempt to collect a session's fee.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import enable_tenant_rls, grant_app_role

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("amount_refunded", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_reference", sa.String(length=255), nullable=False),
        sa.Column("provider_charge_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id", "session_id"],
            ["counseling_sessions.clinic_id", "counseling_sessions.id"],
            name=op.f("fk_payments_clinic_id_session_id_counseling_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id", "patient_id"],
            ["patients.clinic_id", "patients.id"],
            name=op.f("fk_payments_clinic_id_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "clinic_id",
            "session_id",
            "attempt",
            name=op.f("uq_payments_clinic_id_session_id_attempt"),
        ),
        sa.UniqueConstraint(
            "clinic_id",
            "provider",
            "provider_reference",
            name=op.f("uq_payments_clinic_id_provider_provider_reference"),
        ),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_clinic_created", ["clinic_id", "created_at"])
    enable_tenant_rls({"payments": "clinic_id"})
    grant_app_role()


def downgrade() -> None:
    # Dropping the table drops its policies with it.
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_clinic_created")
    op.drop_table("payments")
