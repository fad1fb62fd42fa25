"""create_app(settings) -> Starlette: wires the database, the schema and the routes."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.replica import WriteMarks, remember_write
from gateway.db.replica import route as route_reads
from gateway.documents.http import routes as document_routes
from gateway.integrations.alerting import AlertForwarder
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.outbox import OutboxWorker
from gateway.integrations.webhooks import receive as receive_webhook
from gateway.middleware import RequestContextMiddleware
from gateway.notifications import reminders
from gateway.ops import install as install_ops
from gateway.ops.alerts import add_notifier
from gateway.ops.metrics import OVERLOADED, RESPONSE_CACHE, note_graphql_result
from gateway.realtime.bus import EventBus
from gateway.realtime.connections import Connections
from gateway.response_cache.cache import ResponseCache
from gateway.security.errors import error_body
from gateway.security.ratelimit import RateLimiter, RateLimitMiddleware
from gateway.security.request_guard import RequestGuard
from gateway.services import password_reset
from gateway.services.audit import capture_reads, read_writer
from gateway.settings import Settings, load_settings
from schema import build_schema
from schema.context import GraphQLContext

log = logging.getLogger("santana")


class GatewayGraphQL(RequestGuard, GraphQL[GraphQLContext, None]):  # type: ignore[misc]
    """strawberry's ASGI app with our per-request context (and request limits: RequestGuard)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        cipher: DataCipher,
        integrations: IntegrationHub | None = None,
    ) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.subscriptions_per_connection,
        )
        self.settings = settings
        self.database = database
        self.cipher = cipher
        self.integrations = integrations
        self.init_guard(settings)
        self.response_cache = ResponseCache(settings, database) if settings.response_cache else None
        # Admission control: requests past the limit wait here, holding no connection and
        # building nothing, so memory stays bounded and admitted requests finish fast.
        self.in_flight = asyncio.Semaphore(settings.max_in_flight)
        # Subscriptions (gateway.realtime): committed events, fanned out through Redis if set.
        self.bus = EventBus(
            settings.redis_url, settings.rate_limit_namespace, settings.subscription_queue_size
        )
        self.connections = Connections(settings, self.bus)
        self.write_marks = WriteMarks(
            settings.read_your_writes_seconds, settings.redis_url, settings.rate_limit_namespace
        )

    # orjson: ~10x faster than the json module on a 1,500-field answer; its decode error
    # subclasses json.JSONDecodeError, so a malformed body still gets strawberry's 400.
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:  # type: ignore[override]
        cache = self.response_cache
        lookup = await cache.lookup(request) if cache and isinstance(request, Request) else None
        if lookup is not None:
            RESPONSE_CACHE.labels("miss" if lookup.entry is None else "hit").inc()
        if lookup is not None and lookup.entry is not None:
            note_graphql_result(request, lookup, None)  # labelled like an executed operation
            return cache.answer(lookup, request)  # type: ignore[union-attr]
        if isinstance(request, WebSocket):  # long-lived; its subscriptions share one context
            context = await self.get_context(request, request)
            try:
                return await super().run(request, context, root_value)
            finally:
                await self.connections.close(context)
        try:
            async with asyncio.timeout(self.settings.graphql_timeout_seconds):
                await self.in_flight.acquire()
        except TimeoutError:
            OVERLOADED.inc()
            return overloaded(self.settings.graphql_timeout_seconds)
        try:
            if lookup is None:
                return await super().run(request, context, root_value)
            with capture_reads() as reads:
                response = await super().run(request, context, root_value)
            await cache.save(lookup, response, reads)  # type: ignore[union-attr]
            return response
        finally:
            self.in_flight.release()

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        await self.connections.open(context)  # authenticates connection_init, or refuses (4403)
        return UNSET

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
            integrations=self.integrations,
            request=request,
            response=response,
        )

    async def execute_operation(self, **kwargs: Any) -> Any:  # type: ignore[override]
        # The request's database session lives exactly as long as the operation.
        context: GraphQLContext = kwargs["context"]
        replica = self.database.replica is not None  # DATABASE_READ_URL: gateway.db.replica
        try:
            if replica:
                await route_reads(context, kwargs["request_data"], self.write_marks)
            if context.principal is not None:
                await context.hold_connection()
            result = await super().execute_operation(**kwargs)
            # Operation name and outcome, for the access log, metrics and alerts (gateway.ops).
            note_graphql_result(kwargs["request"], kwargs["request_data"], result)
            return result
        finally:
            if replica:
                await remember_write(context, self.write_marks)
            await context.close()


def overloaded(waited: float) -> Response:
    return JSONResponse(
        error_body(
            "OVERLOADED",
            f"The gateway is busy; the request waited {waited:g} s for its turn. Retry shortly.",
        ),
        status_code=503,
        headers={"Retry-After": "1"},
    )


# Start-up leaves ~150,000 long-lived objects (schema, ORM mappers, plugins) that every
# full collection would scan again; a dashboard request allocates thousands of containers,
# so the default gen-0 threshold (700) collects many times per request. Older generations stay
# near the defaults: a quick wrk run with 50_000/20/100 peaked at ~255 MB RSS per worker
# (baseline ~145 MB; cause not isolated), and in-process 10_000/10/10 costs the same GC time.
GC_THRESHOLDS = (10_000, 10, 10)


def _tune_gc() -> None:
    """Once per served worker, after start-up: freeze what start-up built, collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def provider_fake_routes(integrations: IntegrationHub) -> list[BaseRoute]:
    """Each plugin that ships a local fake of its provider (`dev_fake_app()`) at /_fakes/<name>."""
    routes: list[BaseRoute] = []
    for name, plugin in sorted(integrations.manager.plugins.items()):
        factory = getattr(plugin.obj, "dev_fake_app", None)
        if callable(factory):
            routes.append(Mount(f"/_fakes/{name}", app=factory()))
    return routes


def create_served_app() -> Starlette:
    """The app as `santana serve` runs it in each uvicorn worker (GC tuned at start-up)."""
    return create_app(tune_gc=True)


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    integrations: IntegrationHub | None = None,
    *,
    tune_gc: bool = False,
) -> Starlette:
    settings = settings or load_settings()
    database = database or Database(
        settings.database_url, pool_size=settings.database_pool_size, echo=settings.database_echo
    )
    if settings.database_read_url and database.replica is None:
        database.attach_replica(
            settings.database_read_url,
            pool_size=settings.database_pool_size,
            echo=settings.database_echo,
        )
    cipher = DataCipher(settings.encryption_keys)
    # Plugins are discovered here; a broken one is reported and skipped, never fatal.
    integrations = integrations or IntegrationHub.create(settings, database, cipher)
    graphql = GatewayGraphQL(settings, database, cipher, integrations)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("santana gateway starting (%s, %s)", settings.app_env, database.dialect)
        reads = read_writer(database, settings.audit_flush_seconds)
        reads.start()  # batches the audit rows of patient and notes reads
        # Alerts also go out through the `alert` hook of the plugins in ALERT_PLUGINS.
        stop_forwarding = add_notifier(AlertForwarder(integrations))
        await ops.start()  # the alert evaluator
        await graphql.bus.start()
        stop, worker, sweeper = asyncio.Event(), None, None
        if settings.outbox_in_process_enabled:
            worker = asyncio.create_task(OutboxWorker(integrations).run_forever(stop))
        if settings.email_reminders_in_process_enabled:
            sweeper = asyncio.create_task(reminders.run_forever(database, settings, cipher, stop))
        if tune_gc:
            _tune_gc()
        yield
        await ops.stop()
        await graphql.bus.close()
        await graphql.write_marks.close()
        stop_forwarding()
        stop.set()
        for task in (worker, sweeper):
            if task is not None:
                await task
        await password_reset.settle()  # reset requests answered but not yet queued
        await integrations.close()
        await reads.stop()
        await rate_limiter.close()
        await graphql.persisted.close()
        if graphql.response_cache is not None:
            await graphql.response_cache.close()
        await database.dispose()

    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
        Route("/webhooks/{clinic}/{plugin}", receive_webhook, methods=["POST"]),
        *document_routes(),  # patient document uploads and downloads (gateway.documents)
    ]
    if settings.provider_fakes_enabled:
        routes += provider_fake_routes(integrations)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
    )
    # Added first, so it runs inside RequestContextMiddleware and knows the Principal.
    rate_limiter = RateLimiter(settings)
    app.add_middleware(RateLimitMiddleware, limiter=rate_limiter)
    app.add_middleware(
        RequestContextMiddleware,
        jwt_secret=settings.jwt_secret,
        verification_secrets=settings.jwt_verification_secrets,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.cipher = cipher
    app.state.integrations = integrations
    app.state.rate_limiter = rate_limiter
    # Last, so its access-log middleware is the outermost and times everything.
    ops = install_ops(app, settings, database, cipher, graphql.schema)
    return app
