"""Prometheus metrics, and the small function API other layers report through.

Everything here is per process and labelled by low-cardinality values only
(operation names are sanitised and capped; no ids, no PHI). The integration
layer reports through:

    observe_plugin_call(plugin, kind, hook, seconds, outcome, code=None)
    set_outbox_depth(n)
    set_dead_letters(n)

Rate-limit rejections are counted from responses (HTTP 429 or a GraphQL error
coded RATE_LIMITED), so the limiter needs no call of its own; failed logins are
counted from the `auth.login` audit rows.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy import event
from starlette.requests import Request
from starlette.responses import Response

from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.ops.system import memory_usage_ratio, pool_usage
from gateway.ops.window import ERROR, OK, REJECTED, TrafficWindow

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, cpu, open fds
PlatformCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_DURATION = Histogram(
    "santana_request_duration_seconds",
    "Request latency by GraphQL operation name (or route) and outcome (ok | rejected | error)",
    ["operation", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUEST_ERRORS = Counter(
    "santana_request_errors_total",
    "Requests that did not succeed, by operation and outcome (rejected: caller; error: ours)",
    ["operation", "outcome"],
    registry=REGISTRY,
)
DB_POOL_IN_USE = Gauge(
    "santana_db_pool_in_use", "Database connections checked out", registry=REGISTRY
)
DB_POOL_SIZE = Gauge(
    "santana_db_pool_size", "Database connections the pool may open", registry=REGISTRY
)
MEMORY_USAGE = Gauge(
    "santana_memory_usage_ratio",
    "Memory in use / available (container limit when there is one)",
    registry=REGISTRY,
)
FAILED_LOGINS = Counter(
    "santana_failed_logins_total", "Failed logins by reason", ["reason"], registry=REGISTRY
)
RATE_LIMITED = Counter(
    "santana_rate_limit_rejections_total",
    "Requests refused by a rate limit, by route",
    ["route"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "santana_outbox_depth", "Outbox messages waiting for delivery", registry=REGISTRY
)
DEAD_LETTERS = Gauge(
    "santana_outbox_dead_letters", "Outbox messages given up on", registry=REGISTRY
)
PLUGIN_DURATION = Histogram(
    "santana_plugin_call_duration_seconds",
    "Plugin call latency",
    ["plugin", "kind", "hook"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PLUGIN_FAILURES = Counter(
    "santana_plugin_call_failures_total",
    "Plugin calls that did not succeed, by outcome (rejected | failed | timeout | circuit_open)",
    ["plugin", "kind", "hook", "outcome"],
    registry=REGISTRY,
)
RESPONSE_CACHE = Counter(
    "santana_response_cache_lookups_total",
    "Response cache lookups of cacheable reads, by result (hit | miss)",
    ["result"],
    registry=REGISTRY,
)
COMPILED_READS = Counter(
    "santana_compiled_reads_total",
    "Queries with a compiled plan, by outcome (answered | fallback: run field by field)",
    ["outcome"],
    registry=REGISTRY,
)
OVERLOADED = Counter(
    "santana_overloaded_total",
    "GraphQL requests refused with 503 after waiting GRAPHQL_TIMEOUT_SECONDS for a turn",
    registry=REGISTRY,
)
ALERTS_FIRING = Gauge(
    "santana_alerts_firing", "Alerts currently firing", ["severity"], registry=REGISTRY
)
for _severity in ("critical", "warning"):
    ALERTS_FIRING.labels(_severity)

# Plugin outcomes that mean the provider failed us (a declined card is "rejected", not a failure).
PLUGIN_FAILURE_OUTCOMES = frozenset({"failed", "timeout", "circuit_open"})
PAYMENT_FAILURE_EVENT = "payment_failure"
FAILED_LOGIN_EVENT = "failed_login"

# The GraphQL error codes that are our fault (the rest are the caller's).
SERVER_ERROR_CODES = frozenset({"INTERNAL", "PROVIDER_UNAVAILABLE", "TIMEOUT", "REQUEST_TIMEOUT"})
RATE_LIMIT_CODES = frozenset({"RATE_LIMITED", "RATE_LIMIT_EXCEEDED"})

_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# The first named operation of a document (clients often omit operationName when there is one).
_NAMED_OPERATION = re.compile(r"\b(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)")
MAX_OPERATION_LABELS = 200
_seen_operations: set[str] = set()

# The window of the app created last in this process (there is one in production);
# plugin and login events are counted there so the alert rules can see them.
_window: TrafficWindow | None = None


def bind_window(window: TrafficWindow) -> None:
    global _window
    _window = window


# --- the function API for other layers ------------------------------------------------


def observe_plugin_call(
    plugin: str, kind: str, hook: str, seconds: float, outcome: str = "ok", code: str | None = None
) -> None:
    """Record one plugin call. outcome: ok | rejected | failed | timeout | circuit_open."""
    PLUGIN_DURATION.labels(plugin, kind, hook).observe(seconds)
    if outcome != "ok":
        PLUGIN_FAILURES.labels(plugin, kind, hook, outcome).inc()
    if kind == "payment" and outcome in PLUGIN_FAILURE_OUTCOMES and _window is not None:
        _window.count(PAYMENT_FAILURE_EVENT)


def set_outbox_depth(n: int) -> None:
    OUTBOX_DEPTH.set(n)


def set_dead_letters(n: int) -> None:
    DEAD_LETTERS.set(n)


# --- request outcomes -------------------------------------------------------------------


def operation_label(name: str | None) -> str:
    """A GraphQL operation name safe to use as a label: sanitised, and a bounded set."""
    if not name:
        return "anonymous"
    if not _OPERATION_NAME.match(name):
        return "invalid"
    if name not in _seen_operations:
        if len(_seen_operations) >= MAX_OPERATION_LABELS:
            return "other"
        _seen_operations.add(name)
    return name


def note_graphql_result(request: Any, request_data: Any, result: Any) -> None:
    """Called by the GraphQL view after execution: leaves operation and outcome in scope state.

    The access-log middleware reads them when the response is finished.
    """
    state = request.scope.setdefault("state", {})
    results = result if isinstance(result, list) else [result]
    if isinstance(request_data, list):
        operation = "batch"
    else:
        name = getattr(request_data, "operation_name", None)
        if not name:
            match = _NAMED_OPERATION.search((getattr(request_data, "query", None) or "")[:2000])
            name = match.group(1) if match else None
        operation = operation_label(name)
    codes: list[str] = []
    for item in results:
        for error in getattr(item, "errors", None) or []:
            codes.append(str((error.extensions or {}).get("code", "INTERNAL")))
    if any(code in SERVER_ERROR_CODES for code in codes):
        outcome = ERROR
    elif codes:
        outcome = REJECTED
    else:
        outcome = OK
    state["operation"] = operation
    state["outcome"] = outcome
    state["error_codes"] = tuple(dict.fromkeys(codes))  # unique, in order


def count_rate_limited(route: str) -> None:
    RATE_LIMITED.labels(route).inc()


def observe_request(operation: str, outcome: str, seconds: float) -> None:
    REQUEST_DURATION.labels(operation, outcome).observe(seconds)
    if outcome != OK:
        REQUEST_ERRORS.labels(operation, outcome).inc()


# --- failed logins: counted from the audit rows every login path writes --------------


@event.listens_for(AuditEvent, "after_insert")
def _count_failed_login(_mapper: Any, _connection: Any, target: AuditEvent) -> None:
    reason = str((target.details or {}).get("reason") or "unknown")[:32]
    # "…_needed" rows are a login's first step (2FA to come), not a failure.
    if (
        target.action == "auth.login"
        and target.outcome != "success"
        and not reason.endswith("_needed")
    ):
        FAILED_LOGINS.labels(reason).inc()
        if _window is not None:
            _window.count(FAILED_LOGIN_EVENT)


# --- /metrics ------------------------------------------------------------------------------


def refresh_gauges(database: Database) -> None:
    in_use, size = pool_usage(database)
    DB_POOL_IN_USE.set(in_use)
    DB_POOL_SIZE.set(size)
    MEMORY_USAGE.set(memory_usage_ratio())


def metrics_endpoint(database: Database, token: str | None) -> Any:
    async def metrics(request: Request) -> Response:
        if token is not None:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return Response("metrics require the METRICS_TOKEN bearer token\n", status_code=401)
        refresh_gauges(database)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return metrics
