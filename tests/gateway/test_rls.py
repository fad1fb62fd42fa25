"""PostgreSQL row-level security: the second wall behind the services' clinic filters.

These tests send SQL straight to the database as the app's role, with no WHERE clause
on clinic, so they would catch a table whose policy is missing or wrong even if every
service remembered its filter.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.db.engine import Database
from gateway.db.models import TENANT_TABLES, Base, RefreshToken, UserToken
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.integrations.models import Integration, OutboxMessage, WebhookReceipt
from gateway.services import audit
from tests.factories import World

pytestmark = pytest.mark.postgres_only

# Tables the factory leaves empty and seed() fills for both clinics.
SEEDED = {"audit_events", "refresh_tokens", "user_tokens", "integrations", "webhook_events"}
SEEDED |= {"outbox"}
ROLE_CHECK = """SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles
  WHERE rolname = current_user"""
OWNER_CHECK = """SELECT tablename FROM pg_tables
  WHERE schemaname = 'public' AND tableowner = current_user"""
RLS_FLAGS = """SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
  WHERE relnamespace = 'public'::regnamespace AND relname = ANY(:names)"""


def tenant_tables() -> dict[str, str]:
    """Every table that belongs to clinics (the core's and any registered later, e.g.
    the integration layer's), with the column naming the clinic."""
    tables = Base.metadata.tables.items()
    return {n: "clinic_id" for n, t in tables if "clinic_id" in t.c} | TENANT_TABLES


async def seed(database: Database, world: World) -> None:
    """Give both clinics rows in the tenant tables the factory leaves empty."""
    async with database.transaction(TenantScope.cross_clinic()) as db:
        for cw in (world.a, world.b):
            clinic, admin, tag = cw.clinic.id, cw.admin.id, cw.clinic.slug
            audit.record(db, "test.seeded", clinic_id=clinic, actor_user_id=admin)
            expires = utcnow() + timedelta(days=1)
            token = {"user_id": admin, "clinic_id": clinic, "expires_at": expires}
            for model in (RefreshToken, UserToken):
                digest = hashlib.sha256(f"{model.__name__}-{tag}".encode()).hexdigest()
                extra = {"family_id": uuid.uuid4()} if model is RefreshToken else {"purpose": "x"}
                db.add(model(token_hash=digest, **token, **extra))
            db.add(Integration(clinic_id=clinic, plugin="mail_x", kind="email"))
            db.add(
                WebhookReceipt(clinic_id=clinic, plugin="x", event_type="e", provider_event_id=tag)
            )
            db.add(OutboxMessage(clinic_id=clinic, kind="email", hook="x", payload_encrypted="x"))


async def clinics_seen(database: Database, scope: TenantScope) -> dict[str, list[uuid.UUID]]:
    """For each tenant table: the clinic of every row `scope` can see (no WHERE clause)."""
    seen = {}
    async with database.session(scope) as db:
        for table, column in tenant_tables().items():
            # Names come from the models' metadata, not from input.
            rows = await db.execute(text(f"SELECT {column} FROM {table}"))  # noqa: S608
            seen[table] = list(rows.scalars())
    return seen


async def test_app_role_is_no_superuser_owns_nothing_and_rls_is_forced(database: Database) -> None:
    """Tried: the connected role's attributes, table owners, and each table's RLS flags."""
    tables = tenant_tables()
    unfenced = set(Base.metadata.tables) - set(tables)
    assert not unfenced, f"{unfenced} name no clinic: give them one, or exempt them here"
    async with database.session(TenantScope.nobody()) as db:
        role = (await db.execute(text(ROLE_CHECK))).one()
        owned = (await db.execute(text(OWNER_CHECK))).scalars().all()
        flags = (await db.execute(text(RLS_FLAGS), {"names": list(tables)})).all()
    assert role.name == "santana_app"
    assert (role.rolsuper, role.rolbypassrls) == (False, False), "the app role skips RLS"
    assert owned == [], f"the app role owns {owned}: an owner can disable or drop policies"
    expected = sorted((t, True, True) for t in tables)
    assert sorted(flags) == expected, "RLS is not enabled and forced on every tenant table"


async def test_clinic_scope_sees_only_its_own_rows_without_any_where(
    database: Database, world: World
) -> None:
    """Tried: SELECT with no WHERE on every tenant table (patients, counseling_sessions,
    users, audit_events, ...) in a session fenced to clinic B, then a WHERE asking for A."""
    await seed(database, world)
    a, b = world.a.clinic.id, world.b.clinic.id
    everything = await clinics_seen(database, TenantScope.cross_clinic())
    for table in TENANT_TABLES.keys() | SEEDED:
        assert {a, b} <= set(everything[table]), f"{table}: the test needs rows of both clinics"
    for table, clinics in (await clinics_seen(database, TenantScope.clinic(b))).items():
        assert set(clinics) <= {b}, f"{table}: clinic B's session sees {set(clinics)}"
        assert len(clinics) == everything[table].count(b), f"{table}: B misses its own rows"
    async with database.session(TenantScope.clinic(b)) as db:
        asked = "SELECT count(*) FROM patients WHERE clinic_id = :a"
        assert await db.scalar(text(asked), {"a": a}) == 0, "asking for A's patients by id"
        notes = "SELECT count(*) FROM counseling_sessions WHERE notes_encrypted IS NOT NULL"
        assert await db.scalar(text(notes)) == 1, "only B's one session with notes is visible"
        emails = (await db.execute(text("SELECT email FROM users"))).scalars().all()
    b_users = (world.b.admin, world.b.counselor, world.b.counselor2, world.b.patient_user)
    assert sorted(emails) == sorted(u.email for u in b_users)


async def test_no_tenant_sees_no_rows_at_all(database: Database, world: World) -> None:
    """Tried: reading every tenant table with TenantScope.nobody(), right after a
    cross-clinic transaction (the scope must not stick to a pooled connection)."""
    await seed(database, world)
    everything = await clinics_seen(database, TenantScope.cross_clinic())
    assert all(everything[table] for table in TENANT_TABLES.keys() | SEEDED), "nothing to hide"
    seen = await clinics_seen(database, TenantScope.nobody())
    assert {t: len(rows) for t, rows in seen.items()} == dict.fromkeys(tenant_tables(), 0)


async def test_clinic_scope_cannot_write_into_or_touch_another_clinic(
    database: Database, world: World
) -> None:
    """Tried, in a session fenced to clinic B: INSERT a patient with clinic_id = A,
    UPDATE one of B's patients into clinic A, UPDATE and DELETE A's rows by clinic id."""
    a, b, b_patient = world.a.clinic.id, world.b.clinic.id, world.b.patients[2].id  # no sessions
    insert = text(
        "INSERT INTO patients (clinic_id, id, first_name, last_name, archived, created_at,"
        " updated_at) VALUES (:a, :id, 'Mole', 'Mole', false, now(), now())"
    )
    move = text("UPDATE patients SET clinic_id = :a WHERE id = :id")
    for statement, row_id in ((insert, uuid.uuid4()), (move, b_patient)):
        async with database.session(TenantScope.clinic(b)) as db:
            with pytest.raises(DBAPIError, match="row-level security"):
                await db.execute(statement, {"a": a, "id": row_id})
    rename = text("UPDATE patients SET first_name = 'Hacked' WHERE clinic_id = :a")
    delete = text("DELETE FROM counseling_sessions WHERE clinic_id = :a")
    async with database.transaction(TenantScope.clinic(b)) as db:
        for statement in (rename, delete):
            assert (await db.execute(statement, {"a": a})).rowcount == 0  # type: ignore[attr-defined]
    async with database.session(TenantScope.cross_clinic()) as db:
        params = {"a": a}
        names = await db.execute(text("SELECT first_name FROM patients WHERE clinic_id=:a"), params)
        assert sorted(names.scalars()) == ["Pat0", "Pat1", "Pat2"]
        count = "SELECT count(*) FROM counseling_sessions WHERE clinic_id = :a"
        assert await db.scalar(text(count), params) == 2
        moved = "SELECT clinic_id FROM patients WHERE id = :id"
        assert await db.scalar(text(moved), {"id": b_patient}) == b
