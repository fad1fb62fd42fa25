"""Security: TOTP columns and recovery codes, the audit hash chain, append-only audit log.

Existing audit rows are chained in place (per clinic, oldest first). On PostgreSQL
the app role loses UPDATE, DELETE and TRUNCATE on audit_events: only the table
owner can still change a row, and `santana audit verify` would show it.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.migrations.postgres import app_role, enable_tenant_rls, grant_app_role
from gateway.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("totp_pending_secret_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))

    op.create_table(
        "user_recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_recovery_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_recovery_codes")),
    )
    with op.batch_alter_table("user_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_recovery_codes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))

    _chain_existing_rows()

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_clinic_patient_time", ["clinic_id", "patient_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_clinic_actor_time", ["clinic_id", "actor_user_id", "created_at"], unique=False
        )
        batch_op.create_index("uq_audit_clinic_seq", ["clinic_id", "seq"], unique=True)

    enable_tenant_rls({"user_recovery_codes": "clinic_id", "audit_chain_heads": "clinic_id"})
    grant_app_role()  # also revokes UPDATE/DELETE/TRUNCATE on audit_events (append-only)


def downgrade() -> None:
    role = app_role()
    if role and op.get_bind().dialect.name == "postgresql":
        op.execute(f'GRANT UPDATE, DELETE ON audit_events TO "{role}"')
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("uq_audit_clinic_seq")
        batch_op.drop_index("ix_audit_clinic_actor_time")
        batch_op.drop_index("ix_audit_clinic_patient_time")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.drop_column("patient_id")
    op.drop_table("audit_chain_heads")
    with op.batch_alter_table("user_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_recovery_codes_user_id"))
    op.drop_table("user_recovery_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_pending_secret_encrypted")
        batch_op.drop_column("totp_secret_encrypted")


def _chain_existing_rows() -> None:
    """Hash-chain the audit rows written before this migration, per clinic, oldest first."""
    from gateway.services.audit_chain import GENESIS, HASHED_FIELDS, chain_key, content_hash

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # FORCE RLS applies to the owner too: read and write every clinic's rows.
        bind.execute(sa.text("SELECT set_config('app.scope', 'platform', true)"))
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Uuid()),
        sa.column("clinic_id", sa.Uuid()),
        sa.column("actor_user_id", sa.Uuid()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("details", sa.JSON()),
        sa.column("request_id", sa.String()),
        sa.column("ip", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("patient_id", sa.Uuid()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("row_hash", sa.String()),
    )
    heads = sa.table(
        "audit_chain_heads",
        sa.column("chain", sa.String()),
        sa.column("clinic_id", sa.Uuid()),
        sa.column("last_seq", sa.BigInteger()),
        sa.column("last_hash", sa.String()),
        sa.column("updated_at", UTCDateTime()),
    )
    clinics = list(bind.execute(sa.select(events.c.clinic_id).distinct()).scalars())
    for clinic in clinics:
        fence = events.c.clinic_id.is_(None) if clinic is None else events.c.clinic_id == clinic
        rows = (
            bind.execute(sa.select(events).where(fence).order_by(events.c.created_at, events.c.id))
            .mappings()
            .all()
        )
        prev, updates = GENESIS, []
        for seq, row in enumerate(rows, start=1):
            fields = {name: row[name] for name in HASHED_FIELDS if name != "seq"}
            fields["seq"] = seq
            digest = content_hash(fields, prev)
            updates.append({"_id": row["id"], "seq": seq, "prev_hash": prev, "row_hash": digest})
            prev = digest
        if updates:
            bind.execute(
                events.update()
                .where(events.c.id == sa.bindparam("_id"))
                .values(
                    seq=sa.bindparam("seq"),
                    prev_hash=sa.bindparam("prev_hash"),
                    row_hash=sa.bindparam("row_hash"),
                ),
                updates,
            )
            from datetime import UTC, datetime

            bind.execute(
                heads.insert().values(
                    chain=chain_key(clinic),
                    clinic_id=clinic,
                    last_seq=len(updates),
                    last_hash=prev,
                    updated_at=datetime.now(UTC),
                )
            )
