"""The response cache: hits for repeated reads, never another user's answer, never stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from gateway.app import create_app
from gateway.db.engine import Database, count_statements
from gateway.db.models import AuditEvent, Clinic, Patient
from gateway.db.tenancy import TenantScope
from gateway.ops.metrics import RESPONSE_CACHE
from gateway.response_cache.cache import CACHE_HEADER, is_cacheable
from gateway.response_cache.store import MemoryStore
from gateway.services.audit import read_writer
from gateway.settings import Settings
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World

PATIENTS = "{ patients(first: 10) { nodes { id lastName } } }"
SESSIONS = "{ sessions(first: 20) { nodes { id counselor { fullName } patient { lastName } } } }"
PATIENT = "query($id: ID!) { patient(id: $id) { id lastName } }"


@pytest.fixture
def cached_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"response_cache": True})


@pytest.fixture
async def cached(cached_settings: Settings, database: Database) -> AsyncIterator[GraphQLClient]:
    app = create_app(cached_settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, cached_settings)


async def _post(
    client: GraphQLClient, user: Any, query: str, variables: dict[str, Any] | None = None
) -> tuple[str | None, dict[str, Any]]:
    response = await client.http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {client.token_for(user)}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return response.headers.get(CACHE_HEADER), body["data"]


def _lookups(result: str) -> float:
    return RESPONSE_CACHE.labels(result)._value.get()


async def test_a_repeated_read_is_a_hit_that_skips_execution(
    cached: GraphQLClient, world: World, backend: str
) -> None:
    hits, misses = _lookups("hit"), _lookups("miss")
    first = await _post(cached, world.a.admin, PATIENTS)
    async with count_statements() as counter:
        second = await _post(cached, world.a.admin, PATIENTS)
    assert first[0] == "miss" and second[0] == "hit"
    assert (_lookups("hit") - hits, _lookups("miss") - misses) == (1, 1)  # /metrics counts them
    assert first[1] == second[1]
    # Only the clinic's data version is read (plus the tenant set_config on PostgreSQL).
    assert counter.count == (2 if backend == "postgres" else 1), counter.statements


async def test_users_never_share_an_entry(cached: GraphQLClient, world: World) -> None:
    """Same query text from two counselors, an admin, a patient and another clinic's admin."""
    answers = {}
    for name, user in {
        "counselor": world.a.counselor,
        "counselor2": world.a.counselor2,
        "admin": world.a.admin,
        "patient": world.a.patient_user,
        "other clinic": world.b.admin,
    }.items():
        await _post(cached, user, SESSIONS)  # warm this user's entry
        status, data = await _post(cached, user, SESSIONS)
        assert status == "hit", name
        answers[name] = data
    names = {
        who: {n["counselor"]["fullName"] for n in a["sessions"]["nodes"]}
        for who, a in answers.items()
    }
    assert names["counselor"] == {world.a.counselor.full_name}
    assert names["counselor2"] <= {world.a.counselor2.full_name}  # none of counselor 1's
    assert answers["counselor2"] != answers["counselor"]
    assert world.a.counselor.full_name in names["admin"]
    b_ids = {n["id"] for n in answers["other clinic"]["sessions"]["nodes"]}
    a_ids = {n["id"] for n in answers["admin"]["sessions"]["nodes"]}
    assert b_ids and a_ids and not (a_ids & b_ids)
    own = {n["patient"]["lastName"] for n in answers["patient"]["sessions"]["nodes"]}
    assert own == {world.a.own_patient.last_name}


async def test_a_mutation_invalidates_the_clinics_entries(
    cached: GraphQLClient, world: World
) -> None:
    patient = world.a.patients[0]
    variables = {"id": to_global_id("Patient", patient.id)}
    await _post(cached, world.a.counselor, PATIENT, variables)
    assert (await _post(cached, world.a.counselor, PATIENT, variables))[0] == "hit"
    b_before = await _post(cached, world.b.admin, PATIENTS)
    assert (await _post(cached, world.b.admin, PATIENTS))[0] == "hit"

    await cached.data(
        'mutation($id: ID!) { updatePatient(id: $id, input: {lastName: "Renamed"}) { id } }',
        variables,
        user=world.a.admin,
    )
    status, data = await _post(cached, world.a.counselor, PATIENT, variables)
    assert status == "miss" and data["patient"]["lastName"] == "Renamed"
    # Clinic B's data did not change: its entries stay valid.
    assert await _post(cached, world.b.admin, PATIENTS) == ("hit", b_before[1])


async def test_a_write_by_another_process_is_seen_at_once(
    cached: GraphQLClient, world: World, cached_settings: Settings
) -> None:
    """A write through a separate engine (another instance, the worker) bumps the version."""
    await _post(cached, world.a.admin, PATIENTS)
    other = Database(cached_settings.database_url)
    try:
        async with other.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
            await db.execute(
                update(Patient)
                .where(Patient.clinic_id == world.a.clinic.id, Patient.id == world.a.patients[1].id)
                .values(last_name="Elsewhere")
            )
    finally:
        await other.dispose()
    status, data = await _post(cached, world.a.admin, PATIENTS)
    assert status == "miss"
    assert "Elsewhere" in {n["lastName"] for n in data["patients"]["nodes"]}


async def test_a_rolled_back_write_changes_no_version(world: World, database: Database) -> None:
    async def version() -> int:
        async with database.transaction(TenantScope.cross_clinic()) as db:
            value = await db.scalar(
                select(Clinic.data_version).where(Clinic.id == world.a.clinic.id)
            )
            assert value is not None
            return value

    before = await version()
    with pytest.raises(RuntimeError):
        async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
            patient = await db.get(Patient, (world.a.clinic.id, world.a.patients[0].id))
            assert patient is not None
            patient.last_name = "Never"
            await db.flush()
            raise RuntimeError("abandon the change")
    assert await version() == before
    async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        patient = await db.get(Patient, (world.a.clinic.id, world.a.patients[0].id))
        assert patient is not None
        patient.last_name = "Kept"
    assert await version() == before + 1


async def test_a_hit_is_audited_like_a_read(
    cached: GraphQLClient, world: World, database: Database
) -> None:
    patient = world.a.patients[0]
    variables = {"id": to_global_id("Patient", patient.id)}
    await _post(cached, world.a.counselor, PATIENT, variables)
    assert (await _post(cached, world.a.counselor, PATIENT, variables))[0] == "hit"
    await read_writer(database).flush()
    async with database.transaction(TenantScope.cross_clinic()) as db:
        reads = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "patient.read",
                AuditEvent.patient_id == patient.id,
                AuditEvent.actor_user_id == world.a.counselor.id,
            )
        )
    assert reads == 2


async def test_what_is_never_cached(cached: GraphQLClient, world: World) -> None:
    # Errors (an unknown id) are not kept.
    missing = {"id": to_global_id("Patient", world.b.patients[0].id)}
    for _ in range(2):
        response = await cached.http.post(
            "/graphql",
            json={"query": PATIENT, "variables": missing},
            headers={"Authorization": f"Bearer {cached.token_for(world.a.admin)}"},
        )
        assert response.json().get("errors") and CACHE_HEADER not in response.headers
    # Without a login nothing is cached.
    response = await cached.http.post("/graphql", json={"query": "{ __typename }"})
    assert CACHE_HEADER not in response.headers
    # The audit log is never served from the cache.
    audit = "{ auditEvents(first: 5) { nodes { action } } }"
    for _ in range(2):
        response = await cached.http.post(
            "/graphql",
            json={"query": audit},
            headers={"Authorization": f"Bearer {cached.token_for(world.a.admin)}"},
        )
        assert CACHE_HEADER not in response.headers


def test_only_plain_reads_of_clinic_data_are_cacheable() -> None:
    assert is_cacheable(PATIENTS, None)
    assert is_cacheable("query A { me { id } } query B { auditEvents { nodes { id } } }", "A")
    assert not is_cacheable("query A { me { id } } query B { me { id } }", None)  # ambiguous
    assert not is_cacheable("mutation { logout }", None)
    assert not is_cacheable("{ me { id } auditEvents { nodes { id } } }", None)
    assert not is_cacheable("{ ...F } fragment F on Query { me { id } }", None)
    assert not is_cacheable("{ __schema { types { name } } }", None)
    assert not is_cacheable("{ me { id ", None)  # a syntax error runs (and fails) normally


async def test_memory_store_stays_within_its_budget() -> None:
    store = MemoryStore(max_bytes=1000)
    for i in range(20):
        await store.set(f"k{i}", b"x" * 200, ttl=60)
    assert store.size <= 1000
    assert await store.get("k0") is None and await store.get("k19") == b"x" * 200
    await store.set("huge", b"x" * 600, ttl=60)  # over a quarter of the budget: not kept
    assert await store.get("huge") is None
    await store.set("brief", b"y", ttl=-1)
    assert await store.get("brief") is None
