"""The operations state of one app: what the endpoints, pages and GraphQL fields share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.ops.alerts import AlertEngine
from gateway.ops.window import TrafficWindow
from gateway.settings import Settings


@dataclass
class OpsRuntime:
    settings: Settings
    database: Database
    cipher: DataCipher
    window: TrafficWindow
    alerts: AlertEngine
    schema: Any = None  # the GraphQL schema, for the introspection check
    app_state: Any = None  # the Starlette app's state (other layers hang their objects there)

    async def start(self) -> None:
        self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()


def runtime_of(request: Request) -> OpsRuntime:
    ops: OpsRuntime = request.app.state.ops
    return ops
