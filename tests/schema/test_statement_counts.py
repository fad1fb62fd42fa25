"""Nested lists are resolved through dataloaders: SQL per request does not grow with list length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.db.engine import Database, count_statements
from gateway.db.models import CounselingSession, Modality, Patient, SessionStatus
from gateway.db.tenancy import TenantScope
from tests.conftest import GraphQLClient
from tests.factories import World

DASHBOARD = """query($first: Int!) {
  patients(first: $first, search: "load") {
    edges { node {
      fullName
      sessions(first: 5) { startsAt status counselor { fullName } patient { lastName } }
      user { email }
    } }
    pageInfo { hasNextPage }
  }
}"""


async def _add_patients(database: Database, world: World, count: int) -> None:
    clinic = world.a
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    async with database.transaction(TenantScope.clinic(clinic.clinic.id)) as db:
        for i in range(count):
            patient = Patient(
                clinic_id=clinic.clinic.id,
                first_name=f"Load{i}",
                last_name=f"Test{i:03d}",
                archived=False,
            )
            db.add(patient)
            await db.flush()
            for j in range(6):
                at = start + timedelta(days=i % 20, hours=j)
                counselor = clinic.counselor if j % 2 else clinic.counselor2
                db.add(
                    CounselingSession(
                        clinic_id=clinic.clinic.id,
                        patient_id=patient.id,
                        counselor_id=counselor.id,
                        starts_at=at,
                        ends_at=at + timedelta(minutes=50),
                        duration_minutes=50,
                        modality=Modality.PHONE,
                        status=SessionStatus.COMPLETED,
                        fee_amount=0,
                        currency="USD",
                    )
                )


async def test_dashboard_statement_count_is_constant(
    client: GraphQLClient, world: World, database: Database, backend: str
) -> None:
    await _add_patients(database, world, 60)
    counts = {}
    for first in (5, 50):
        async with count_statements() as counter:
            data = await client.data(DASHBOARD, {"first": first}, user=world.a.admin)
        edges = data["patients"]["edges"]
        assert len(edges) == first
        assert sum(len(e["node"]["sessions"]) for e in edges) == 5 * first
        counts[first] = counter.count
    # One page of patients, one batch of their sessions, one batch of users (counselors
    # and patient logins); session.patient is served from the primed loader. PostgreSQL
    # adds the transaction's tenant set_config.
    print("statements per dashboard request:", counts)
    assert counts[5] == counts[50], counts
    assert counts[50] <= (4 if backend == "postgres" else 3), counts


async def test_counselor_dashboard_shows_only_their_sessions(
    client: GraphQLClient, world: World, database: Database
) -> None:
    await _add_patients(database, world, 3)
    data = await client.data(DASHBOARD, {"first": 10}, user=world.a.counselor)
    names = {
        s["counselor"]["fullName"] for e in data["patients"]["edges"] for s in e["node"]["sessions"]
    }
    assert names == {"Counselor a"}


async def test_sibling_root_fields_share_the_request_session(
    client: GraphQLClient, world: World
) -> None:
    """Root fields run concurrently; each reaches the database on the same session."""
    data = await client.data(
        "{ me { email } clinic { slug } patients(first: 2) { nodes { id } } a: me { role } }",
        user=world.a.admin,
    )
    assert data["me"]["email"] == "admin@a.test" and data["clinic"]["slug"] == "clinic-a"
    assert len(data["patients"]["nodes"]) == 2


def _depth(query: str) -> int:
    """Nesting depth of object fields: `{ a { b { c } } }` selects objects two levels deep."""
    from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse

    def levels(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode) and node.selection_set is not None:
                # Relay wrappers (edges, node, nodes, pageInfo) are not a level of data.
                wrapper = node.name.value in {"edges", "node", "nodes", "pageInfo"}
                deepest = max(deepest, levels(node.selection_set) + (0 if wrapper else 1))
        return deepest

    operation = next(d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode))
    return levels(operation.selection_set)


async def test_every_benchmark_read_costs_at_most_its_depth_plus_one(
    client: GraphQLClient, world: World, database: Database, backend: str
) -> None:
    """The benchmark's own read scenarios: statements <= nesting depth + 1 (+ set_config)."""
    from benchmarks.scenarios import DASHBOARD as BENCH_DASHBOARD
    from benchmarks.scenarios import DAY_VIEW, ME, PATIENT
    from schema.ids import to_global_id

    await _add_patients(database, world, 20)
    session = world.a.upcoming_session
    day = session.starts_at.replace(hour=0, minute=0, second=0)
    cases = {
        "dashboard": (BENCH_DASHBOARD, {"first": 50}, world.a.admin),
        "day view": (
            DAY_VIEW,
            {
                "from": day.isoformat(),
                "to": (day + timedelta(days=1)).isoformat(),
                "counselor": to_global_id("User", session.counselor_id),
            },
            world.a.counselor,
        ),
        "patient": (
            PATIENT,
            {"id": to_global_id("Patient", world.a.patients[0].id)},
            world.a.admin,
        ),
        "me": (ME, {}, world.a.counselor),
    }
    tenant_setup = 1 if backend == "postgres" else 0
    for name, (query, variables, user) in cases.items():
        async with count_statements() as counter:
            data = await client.data(query, variables, user=user)
        assert data, name
        bound = _depth(query) + 1 + tenant_setup
        print(f"{name}: {counter.count} statements, depth {_depth(query)}")
        assert counter.count <= bound, (name, counter.statements)
    # The day view found the session it was asked for (the bound is not met by an empty answer).
    day_data = await client.data(*cases["day view"][:2], user=world.a.counselor)
    assert day_data["sessions"]["edges"]
