"""create_app(settings) -> Starlette: wires the database, the schema and the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.middleware import RequestContextMiddleware
from gateway.settings import Settings, load_settings
from schema import build_schema
from schema.context import GraphQLContext

log = logging.getLogger("santana")


class GatewayGraphQL(GraphQL):  # type: ignore[type-arg]
    """strawberry's ASGI app with our per-request context."""

    def __init__(self, settings: Settings, database: Database, cipher: DataCipher) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=False,
        )
        self.settings = settings
        self.database = database
        self.cipher = cipher

    async def get_context(self, request: Request | WebSocket, response: Any) -> GraphQLContext:
        state = request.scope.get("state", {})
        client = request.client
        return GraphQLContext(
            settings=self.settings,
            database=self.database,
            cipher=self.cipher,
            principal=state.get("principal"),
            auth_error=state.get("auth_error"),
            request_id=state.get("request_id"),
            ip=client.host if client else None,
            request=request,
            response=response,
        )

    async def execute_operation(self, **kwargs: Any) -> Any:  # type: ignore[override]
        # The request's database session lives exactly as long as the operation.
        try:
            return await super().execute_operation(**kwargs)
        finally:
            await kwargs["context"].close()


def create_app(settings: Settings | None = None, database: Database | None = None) -> Starlette:
    settings = settings or load_settings()
    database = database or Database(
        settings.database_url, pool_size=settings.database_pool_size, echo=settings.database_echo
    )
    cipher = DataCipher(settings.encryption_keys)
    graphql = GatewayGraphQL(settings, database, cipher)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("santana gateway starting (%s, %s)", settings.app_env, database.dialect)
        yield
        await database.dispose()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/api/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware, jwt_secret=settings.jwt_secret)
    app.state.settings = settings
    app.state.database = database
    app.state.cipher = cipher
    return app
