"""Apps with non-default security settings, over the test's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.settings import Settings, load_settings
from tests.conftest import GraphQLClient

STRONG_SECRET = "p" * 64
PROD_KEY = Fernet.generate_key().decode()


class SecClient(GraphQLClient):
    """A GraphQLClient that also exposes the app and raw POSTs."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, app: Starlette) -> None:
        super().__init__(http, settings)
        self.app = app

    async def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json=body, headers=headers or {})


MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client(database: Database, database_url: str) -> AsyncIterator[MakeClient]:
    """`await make_client(**settings overrides, client_ip=...)` -> SecClient (closed after the test)."""
    stack = AsyncExitStack()

    async def make(
        client_ip: str = "127.0.0.1", production: bool = False, **overrides: Any
    ) -> SecClient:
        base: dict[str, Any] = {"app_env": "test", "database_url": database_url}
        if production:
            base.update(
                app_env="production", jwt_secret=STRONG_SECRET, data_encryption_keys=PROD_KEY
            )
        settings = load_settings(**{**base, **overrides})
        app = create_app(settings, database)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=(client_ip, 5000))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        return SecClient(http, settings, app)

    yield make
    await stack.aclose()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return load_settings(**{"app_env": "test", "database_url": database_url, **overrides})
