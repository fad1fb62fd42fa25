"""Fixtures for the operations tests: the app itself (its ops state is needed), an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.engine import Database
from gateway.ops.runtime import OpsRuntime
from gateway.settings import Settings


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[Starlette]:
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def ops(app: Starlette) -> OpsRuntime:
    return app.state.ops


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def bearer(user: Any, settings: Settings) -> dict[str, str]:
    principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
    token, _ = issue_access_token(principal, settings.jwt_secret, 300)
    return {"Authorization": f"Bearer {token}"}


async def gql(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    operation: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation:
        body["operationName"] = operation
    return await http.post("/graphql", json=body, headers=headers or {})
