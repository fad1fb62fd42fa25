"""Error shape: a code in `extensions` for everything a client can act on; bugs masked."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from gateway.db.engine import Database
from gateway.db.models import CounselingSession
from gateway.db.tenancy import TenantScope
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World


async def test_syntax_and_unknown_field_errors_are_validation_errors(
    client: GraphQLClient, world: World
) -> None:
    assert await client.error_code("{ me { ", user=world.a.admin) == "GRAPHQL_VALIDATION"
    assert await client.error_code("{ me { salary } }", user=world.a.admin) == "GRAPHQL_VALIDATION"
    body = await client.execute(
        "query($f: Int!) { patients(first: $f) { nodes { id } } }",
        {"f": "many"},
        user=world.a.admin,
    )
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


async def test_garbage_ids_are_validation_errors(client: GraphQLClient, world: World) -> None:
    for bad in ("not-an-id", to_global_id("Clinic", world.a.clinic.id)):
        body = await client.execute(
            "query($id: ID!) { patient(id: $id) { id } }", {"id": bad}, user=world.a.admin
        )
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION", bad


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    client: GraphQLClient, world: World, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # Notes that no configured key can decrypt (e.g. a lost key) are a server fault, not the caller's.
    async with database.transaction(TenantScope.cross_clinic()) as db:
        await db.execute(
            update(CounselingSession)
            .where(CounselingSession.id == world.a.past_session.id)
            .values(notes_encrypted="gAAAAA-not-a-valid-token")
        )
    query = "query($id: ID!) { session(id: $id) { status notes } }"
    session_id = to_global_id("CounselingSession", world.a.past_session.id)
    with caplog.at_level(logging.ERROR, logger="santana.graphql"):
        response = await client.http.post(
            "/graphql",
            json={"query": query, "variables": {"id": session_id}},
            headers={
                "Authorization": f"Bearer {client.token_for(world.a.counselor)}",
                "X-Request-ID": "req-123",
            },
        )
    body = response.json()
    assert response.headers["x-request-id"] == "req-123"
    assert body["data"]["session"] == {"status": "COMPLETED", "notes": None}
    error = body["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-123"}
    assert "gAAAAA" not in response.text
    assert any("req-123" in r.getMessage() for r in caplog.records)


async def test_queries_nested_too_deep_are_refused(client: GraphQLClient, world: World) -> None:
    # A client (or an attacker) nesting session -> patient -> session ... 20 levels deep.
    deep = (
        "{ me { clinic { patients { nodes { "
        + "sessions { patient { " * 10
        + "id"
        + " } }" * 10
        + " } } } } }"
    )
    assert await client.error_code(deep, user=world.a.admin) == "GRAPHQL_VALIDATION"


async def test_a_failed_field_leaves_no_connection_behind(
    client: GraphQLClient, world: World, database: Database
) -> None:
    # `session` is not visible to the second counselor: the non-null root field fails while
    # its siblings are still querying. graphql-core answers at once and cancels or abandons
    # them; the request must still return its connection (before, on PostgreSQL, the answer
    # became a 500 or a connection stayed idle in transaction, holding its locks).
    query = """query($id: ID!) { me { id email clinic { id name } } clinic { name timezone }
      session(id: $id) { id status patient { fullName } counselor { email } notes } }"""
    variables = {"id": to_global_id("CounselingSession", world.a.sessions[0].id)}
    for _ in range(10):
        body = await client.execute(query, variables, user=world.a.counselor2)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert database.engine.pool.checkedout() == 0
