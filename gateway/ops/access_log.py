"""One JSON access-log line per request, and the request's figures for metrics and alerts.

Pure ASGI (no BaseHTTPMiddleware): it wraps `send` to see the status and adds no
task or buffering. It must be the outermost middleware so its timing covers the
others (request id, auth, rate limits). It logs identifiers only: the request
id, operation name, user and clinic ids, status and duration. Never headers,
query strings, bodies or tokens.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ops import metrics
from gateway.ops.window import ERROR, OK, REJECTED, RequestRecord, TrafficWindow, now_utc

log = logging.getLogger("santana.access")


def configure_access_logger() -> None:
    """Access lines go to stderr as bare JSON, one per line, unless logging was set up for them."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class AccessLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        window: TrafficWindow,
        quiet_paths: Iterable[str] = (),
        route_prefixes: Iterable[str] = (),
        enabled: bool = True,
    ) -> None:
        self.app = app
        self.window = window
        # Probes, scrapes and operator pages: logged, but kept out of the API figures.
        self.quiet_paths = frozenset(quiet_paths)
        self.route_prefixes = tuple(route_prefixes)
        self.enabled = enabled

    def _route(self, path: str) -> str:
        # A bounded label: unknown paths (scanners, typos) all count as "other".
        if path == "/graphql" or path in self.quiet_paths:
            return path
        for prefix in self.route_prefixes:
            if path.startswith(prefix):
                return prefix.rstrip("/") + "/*"
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # if the app raises before answering, the client gets a 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            status = 500
            raise
        finally:
            self._finish(scope, state, status, time.perf_counter() - started)

    def _finish(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        path: str = scope.get("path", "")
        route = self._route(path)
        operation = state.get("operation") if path == "/graphql" else None
        operation = operation or route
        outcome = state.get("outcome") or OK
        codes: tuple[str, ...] = tuple(state.get("error_codes") or ())
        if status >= 500:
            outcome = ERROR
        elif status >= 400 and outcome == OK:
            outcome = REJECTED
        if status == 429 or any(code in metrics.RATE_LIMIT_CODES for code in codes):
            metrics.count_rate_limited(route)
        request_id = str(state.get("request_id") or "")
        if path not in self.quiet_paths:
            metrics.observe_request(operation, outcome, seconds)
            record = RequestRecord(
                now_utc(), request_id, operation, status, outcome, 1000 * seconds, codes
            )
            self.window.observe(operation, seconds, outcome, record)
        if not self.enabled:
            return
        principal = state.get("principal")
        client = scope.get("client")
        line = {
            "ts": now_utc().isoformat(timespec="milliseconds"),
            "type": "access",
            "request_id": request_id,
            "method": scope.get("method"),
            "route": route,
            "operation": operation,
            "status": status,
            "outcome": outcome,
            "duration_ms": round(1000 * seconds, 2),
            "user_id": str(principal.user_id) if principal else None,
            "role": principal.role.value if principal else None,
            "clinic_id": str(principal.clinic_id) if principal and principal.clinic_id else None,
            "ip": client[0] if client else None,
            "error_codes": list(codes) or None,
        }
        log.info(orjson.dumps(line).decode())
