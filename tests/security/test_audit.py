"""The audit log: reads of patients and notes are recorded, `auditEvents` is fenced per clinic,
and the per-clinic hash chain exposes a row edited behind the application's back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.services import audit, audit_chain
from gateway.services.audit_chain import verify_chains
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import PASSWORD, World

AUDIT = """query($first: Int! = 50, $after: String, $action: String, $prefix: String, $patient: ID, $actor: ID,
               $clinic: ID, $from: DateTime, $to: DateTime) {
  auditEvents(first: $first, after: $after, action: $action, actionPrefix: $prefix, patientId: $patient,
              actorId: $actor, clinicId: $clinic, from: $from, to: $to) {
    nodes { id action outcome actorId patientId targetId clinicId seq rowHash actor { email } }
    pageInfo { hasNextPage endCursor } } }"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"


async def _flush_reads(database: Database) -> int:
    return await audit.read_writer(database).flush()


async def _events(
    client: GraphQLClient, user: object, **variables: object
) -> list[dict[str, object]]:
    return (await client.data(AUDIT, variables, user=user))["auditEvents"]["nodes"]


async def test_reads_of_patient_records_and_notes_are_recorded(
    client: GraphQLClient, world: World, database: Database
) -> None:
    a = world.a
    listing = "{ patients { nodes { id } } }"
    await client.data(listing, user=a.counselor)
    await client.data(
        "query($id: ID!) { patient(id: $id) { firstName } }",
        {"id": to_global_id("Patient", a.own_patient.id)},
        user=a.counselor,
    )
    notes = "query($id: ID!) { session(id: $id) { notes } }"
    await client.data(
        notes, {"id": to_global_id("CounselingSession", a.past_session.id)}, user=a.counselor
    )
    # Queued, then written in one batch (one transaction, not one per row).
    assert await _flush_reads(database) == 3 + 1 + 1
    own = to_global_id("Patient", a.own_patient.id)
    reads = await _events(client, a.admin, action="patient.read", patient=own)
    assert len(reads) == 2  # the list and the direct read
    assert {r["actor"]["email"] for r in reads} == {"counselor@a.test"}  # type: ignore[index]
    note_reads = await _events(client, a.admin, action="session.notes_read")
    assert len(note_reads) == 1 and note_reads[0]["patientId"] == own
    assert note_reads[0]["targetId"] == str(a.past_session.id)
    # Every patient in the list was recorded, each with its own row.
    all_reads = await _events(client, a.admin, action="patient.read")
    assert {r["patientId"] for r in all_reads} == {
        to_global_id("Patient", p.id) for p in a.patients
    }


async def test_audit_events_are_for_admins_and_fenced_to_their_clinic(
    client: GraphQLClient, world: World
) -> None:
    for email in ("admin@a.test", "admin@b.test", "counselor@b.test"):
        await client.data(LOGIN, {"e": email, "p": PASSWORD})
    for user in (world.a.counselor, world.a.patient_user):
        assert await client.error_code(AUDIT, user=user) == "FORBIDDEN"
    a_clinic, b_clinic = (
        to_global_id("Clinic", world.a.clinic.id),
        to_global_id("Clinic", world.b.clinic.id),
    )
    mine = await _events(client, world.a.admin)
    assert mine and {e["clinicId"] for e in mine} == {a_clinic}
    assert await client.error_code(AUDIT, {"clinic": b_clinic}, user=world.a.admin) == "FORBIDDEN"
    everything = await _events(client, world.platform_admin)
    assert {e["clinicId"] for e in everything} == {a_clinic, b_clinic}
    only_b = await _events(client, world.platform_admin, clinic=b_clinic)
    assert len(only_b) == 2 and {e["clinicId"] for e in only_b} == {b_clinic}


async def test_filters_and_cursor_pagination(client: GraphQLClient, world: World) -> None:
    for password in ("wrong-password-1", PASSWORD, PASSWORD):
        await client.execute(LOGIN, {"e": "counselor@a.test", "p": password})
    await client.data(LOGIN, {"e": "admin@a.test", "p": PASSWORD})
    counselor = to_global_id("User", world.a.counselor.id)
    by_actor = await _events(client, world.a.admin, actor=counselor, prefix="auth.")
    assert [e["outcome"] for e in by_actor] == ["success", "success", "failure"]  # newest first
    seen, after = [], None
    while True:
        page = (
            await client.data(
                AUDIT, {"first": 1, "after": after, "actor": counselor}, user=world.a.admin
            )
        )["auditEvents"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 3
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert await _events(client, world.a.admin, **{"from": later}) == []
    assert len(await _events(client, world.a.admin, to=later, action="auth.login")) == 4


async def _tamper(owner_url: str, statement: object) -> None:
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # FORCE RLS binds the owner too; an attacker with the owner's password sets the scope.
                await conn.execute(text("SELECT set_config('app.scope', 'platform', true)"))
            await conn.execute(statement)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_chain_verifies_and_reports_the_first_tampered_row(
    client: GraphQLClient,
    world: World,
    database: Database,
    owner_url: str,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    for _ in range(3):
        await client.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD})
    await client.execute(LOGIN, {"e": "counselor@a.test", "p": "wrong-password-1"})
    await client.data(LOGIN, {"e": "admin@b.test", "p": PASSWORD})
    assert all(r.ok for r in await verify_chains(database))
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert f"ok      chain {world.a.clinic.id}: 4 events" in ok.output

    # Someone with the owner's rights turns the failed login into a success.
    async with database.transaction(TenantScope.cross_clinic()) as db:
        failed = await db.scalar(select(AuditEvent).where(AuditEvent.outcome == "failure"))
        assert failed is not None and failed.seq == 4
    await _tamper(
        owner_url, update(AuditEvent).where(AuditEvent.id == failed.id).values(outcome="success")
    )
    broken = await asyncio.to_thread(runner.invoke, cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert (
        f"BROKEN  chain {world.a.clinic.id}: first broken link at seq 4 (event {failed.id})"
        in broken.output
    )
    assert "row content was changed" in broken.output
    assert (
        f"ok      chain {world.b.clinic.id}" in broken.output
    )  # the other clinic's chain is intact

    # Deleting the last row of a chain is caught by the chain head.
    reports = {r.chain: r for r in await verify_chains(database, world.b.clinic.id)}
    assert reports[str(world.b.clinic.id)].ok
    await _tamper(owner_url, delete(AuditEvent).where(AuditEvent.clinic_id == world.b.clinic.id))
    report = (await verify_chains(database, world.b.clinic.id))[0]
    assert not report.ok and "rows deleted at the end" in (report.reason or "")


async def test_concurrent_writers_of_one_clinic_never_fork_the_chain(
    world: World, database: Database
) -> None:
    async def write(i: int) -> None:
        async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
            audit.record(
                db,
                "test.concurrent",
                clinic_id=world.a.clinic.id,
                actor_user_id=world.a.admin.id,
                details={"i": i},
            )
            await asyncio.sleep(0.01)  # hold the transaction open while others queue

    await asyncio.gather(*(write(i) for i in range(12)))
    async with database.transaction(TenantScope.cross_clinic()) as db:
        seqs = sorted(
            (
                await db.scalars(
                    select(AuditEvent.seq).where(AuditEvent.clinic_id == world.a.clinic.id)
                )
            ).all()
        )
    assert seqs == list(range(1, 13))
    assert all(r.ok for r in await verify_chains(database))


@pytest.mark.postgres_only
async def test_the_app_role_cannot_change_or_delete_audit_rows(
    world: World, database: Database
) -> None:
    async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        audit.record(db, "test.row", clinic_id=world.a.clinic.id, actor_user_id=world.a.admin.id)
    for statement in (update(AuditEvent).values(outcome="failure"), delete(AuditEvent)):
        async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
            with pytest.raises(DBAPIError, match="permission denied"):
                await db.execute(statement)
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        assert await db.scalar(select(func.count()).select_from(AuditEvent)) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "patient.read", "details": {}, "seq": 7, "ip": None, "ok": True},
        {"name": 'é "quoted" \\ back\nline\ttab \x01 \x7f \u2028 😀', "details": {}},
        {"details": {"nested": [1, 2.5, None], "when": datetime(2026, 1, 2, tzinfo=UTC)}},
    ],
)
def test_the_hashed_bytes_are_the_v1_format_whatever_the_encoder(payload: dict) -> None:
    # Flat payloads (every read-audit row) are encoded by orjson for speed; the bytes must be
    # exactly v1's json.dumps bytes, or every existing chain would stop verifying.
    v1 = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert audit_chain._canonical(payload) == v1.encode()
