"""Admission control: at most GRAPHQL_MAX_IN_FLIGHT requests execute at once per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import GatewayGraphQL, create_app
from gateway.db.engine import Database
from gateway.ops.metrics import OVERLOADED
from gateway.settings import Settings
from tests.conftest import GraphQLClient
from tests.factories import World

ME = "{ me { email } }"


@pytest.fixture
async def one_at_a_time(settings: Settings, database: Database) -> AsyncIterator[Starlette]:
    limited = settings.model_copy(
        update={"graphql_max_in_flight": 1, "graphql_timeout_seconds": 0.3}
    )
    app = create_app(limited, database)
    async with app.router.lifespan_context(app):
        yield app


def _view(app: Starlette) -> GatewayGraphQL:
    return next(
        r.endpoint for r in app.routes if isinstance(getattr(r, "endpoint", None), GatewayGraphQL)
    )  # type: ignore[attr-defined]


async def test_requests_over_the_limit_wait_their_turn(
    one_at_a_time: Starlette, world: World, settings: Settings
) -> None:
    transport = httpx.ASGITransport(app=one_at_a_time)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        client = GraphQLClient(http, settings)
        results = await asyncio.gather(*(client.data(ME, user=world.a.admin) for _ in range(6)))
    assert [r["me"]["email"] for r in results] == [world.a.admin.email] * 6


async def test_a_request_that_cannot_get_a_turn_is_told_to_retry(
    one_at_a_time: Starlette, world: World, settings: Settings
) -> None:
    """Every slot is taken (held here) for longer than the request may wait."""
    view = _view(one_at_a_time)
    transport = httpx.ASGITransport(app=one_at_a_time)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        client = GraphQLClient(http, settings)
        refused = OVERLOADED._value.get()
        await view.in_flight.acquire()
        try:
            response = await http.post(
                "/graphql",
                json={"query": ME},
                headers={"Authorization": f"Bearer {client.token_for(world.a.admin)}"},
            )
        finally:
            view.in_flight.release()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["errors"][0]["extensions"]["code"] == "OVERLOADED"
        assert OVERLOADED._value.get() == refused + 1
        # The slot is free again: the next request runs normally.
        assert (await client.data(ME, user=world.a.admin))["me"]["email"] == world.a.admin.email
