"""Operations: health, readiness, metrics, alerts, business figures, access log, pages, backups.

`install(app, ...)` wires it all into a Starlette app; create_app calls it last so
the access-log middleware is the outermost one.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.ops import metrics
from gateway.ops.access_log import AccessLogMiddleware, configure_access_logger
from gateway.ops.alerts import AlertEngine
from gateway.ops.health import data_endpoint, liveness
from gateway.ops.pages import page_routes
from gateway.ops.readiness import ready_endpoint
from gateway.ops.runtime import OpsRuntime
from gateway.ops.window import TrafficWindow
from gateway.settings import Settings

# Routes that are not API traffic: kept out of the latency/error figures (still logged).
QUIET_PATHS = (
    "/api/health",
    "/api/ready",
    "/api/data",
    "/metrics",
    "/login",
    "/logout",
    "/system-health",
    "/production-readiness",
    "/admin-debug",
    "/admin-debug/retry",
)


def install(
    app: Starlette, settings: Settings, database: Database, cipher: DataCipher, schema: Any = None
) -> OpsRuntime:
    window = TrafficWindow(
        window_seconds=settings.alert_window_seconds, slow_ms=settings.slow_operation_ms
    )
    metrics.bind_window(window)
    ops = OpsRuntime(
        settings=settings,
        database=database,
        cipher=cipher,
        window=window,
        alerts=AlertEngine(settings, database, window),
        schema=schema,
        app_state=app.state,
    )
    app.state.ops = ops
    app.router.routes.extend(
        [
            Route("/api/health", liveness, methods=["GET"]),
            Route("/api/ready", ready_endpoint(settings, database), methods=["GET"]),
            Route("/api/data", data_endpoint, methods=["GET"]),
            Route(
                "/metrics",
                metrics.metrics_endpoint(database, settings.metrics_token),
                methods=["GET"],
            ),
            *page_routes(),
        ]
    )
    if settings.access_log:
        configure_access_logger()
    prefixes = ["/webhooks/"]
    app.add_middleware(
        AccessLogMiddleware,
        window=window,
        quiet_paths=QUIET_PATHS,
        route_prefixes=prefixes,
        enabled=settings.access_log,
    )
    return ops
