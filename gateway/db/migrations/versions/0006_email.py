"""Email: notifications, delivery status and bounced addresses.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import enable_tenant_rls, grant_app_role

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TENANT_TABLES = {
    "email_messages": "clinic_id",
    "email_bounces": "clinic_id",
    "email_provider_events": "clinic_id",
    "clinic_email_settings": "clinic_id",
}


def upgrade() -> None:
    op.create_table(
        "email_messages",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("outbox_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint(
            "clinic_id", "dedupe_key", name=op.f("uq_email_messages_clinic_id_dedupe_key")
        ),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index("ix_email_messages_clinic_created", ["clinic_id", "created_at"])
        batch_op.create_index("ix_email_messages_clinic_outbox", ["clinic_id", "outbox_id"])
        batch_op.create_index(
            "ix_email_messages_clinic_provider_id", ["clinic_id", "provider_message_id"]
        )
    op.create_table(
        "email_bounces",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", "address", name=op.f("pk_email_bounces")),
    )
    op.create_table(
        "email_provider_events",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "clinic_id", "provider", "event_id", name=op.f("pk_email_provider_events")
        ),
    )
    op.create_table(
        "clinic_email_settings",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("sender_name", sa.String(length=100), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_clinic_email_settings")),
    )
    enable_tenant_rls(_TENANT_TABLES)
    grant_app_role()


def downgrade() -> None:
    # Dropping a table drops its policies with it.
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_email_messages_clinic_provider_id")
        batch_op.drop_index("ix_email_messages_clinic_outbox")
        batch_op.drop_index("ix_email_messages_clinic_created")
    for table in reversed(list(_TENANT_TABLES)):
        op.drop_table(table)
