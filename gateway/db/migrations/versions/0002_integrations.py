"""Integrations: per-clinic plugin configuration, received webhooks, the outbox.

All three tables are tenant-owned and get the same FORCE RLS policy as the core.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import enable_tenant_rls, grant_app_role

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plugin", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets_encrypted", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_integrations_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("clinic_id", "plugin", name=op.f("uq_integrations_clinic_id_plugin")),
    )
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.create_index(
            "uq_integrations_enabled_kind",
            ["clinic_id", "kind"],
            unique=True,
            sqlite_where=sa.text("enabled"),
            postgresql_where=sa.text("enabled"),
        )

    op.create_table(
        "webhook_events",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plugin", sa.String(length=40), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_webhook_events_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "clinic_id",
            "plugin",
            "provider_event_id",
            name=op.f("uq_webhook_events_clinic_id_plugin_provider_event_id"),
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("payload_encrypted", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plugin", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_outbox_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)

    enable_tenant_rls(
        {"integrations": "clinic_id", "webhook_events": "clinic_id", "outbox": "clinic_id"}
    )
    grant_app_role()


def downgrade() -> None:
    # Dropping a table drops its policies with it.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
    op.drop_table("outbox")
    op.drop_table("webhook_events")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_integrations_enabled_kind",
            sqlite_where=sa.text("enabled"),
            postgresql_where=sa.text("enabled"),
        )
    op.drop_table("integrations")
