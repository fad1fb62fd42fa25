"""Liveness (/api/health), the live system-health figures, and /api/data for scripts.

`/api/health` answers without touching the database: it says the process is up.
`/api/data?type=system-health` is the manual's incident step 1; `?type=dashboard`
adds the business metrics. Both need a platform admin's bearer token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.db.models import Role
from gateway.ops.business import business_metrics
from gateway.ops.operator_auth import operator_principal
from gateway.ops.readiness import readiness_checks
from gateway.ops.runtime import OpsRuntime, runtime_of
from gateway.ops.system import memory_usage_ratio, pool_usage, process_memory_bytes, uptime_seconds
from gateway.ops.window import now_utc

# The manual's daily targets (not settings: they are the yardstick the figures are read against).
TARGET_RESPONSE_MS = 200.0
TARGET_ERROR_RATE = 0.005
TARGET_DB_POOL = 0.80
TARGET_MEMORY = 0.85
TARGET_SUCCESS_RATE = 0.99


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float
    display: str
    target: str
    ok: bool


async def liveness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def figures(ops: OpsRuntime) -> tuple[list[Figure], dict[str, Any]]:
    stats = ops.window.stats()
    in_use, size = pool_usage(ops.database)
    pool = in_use / size if size else 0.0
    memory = memory_usage_ratio()
    out = [
        Figure(
            "response_time_ms",
            "Average response time",
            round(stats.avg_ms, 1),
            f"{stats.avg_ms:.0f} ms",
            f"< {TARGET_RESPONSE_MS:.0f} ms",
            stats.avg_ms < TARGET_RESPONSE_MS,
        ),
        Figure(
            "error_rate",
            "Error rate",
            round(stats.error_rate, 4),
            f"{stats.error_rate:.2%}",
            f"< {TARGET_ERROR_RATE:.1%}",
            stats.error_rate < TARGET_ERROR_RATE,
        ),
        Figure(
            "db_pool",
            "Database connections",
            round(pool, 4),
            f"{pool:.0%} ({in_use} of {size})",
            f"< {TARGET_DB_POOL:.0%} of pool",
            pool < TARGET_DB_POOL,
        ),
        Figure(
            "memory",
            "Memory usage",
            round(memory, 4),
            f"{memory:.0%}",
            f"< {TARGET_MEMORY:.0%}",
            memory < TARGET_MEMORY,
        ),
        Figure(
            "success_rate",
            "API success rate",
            round(stats.success_rate, 4),
            f"{stats.success_rate:.2%}",
            f"> {TARGET_SUCCESS_RATE:.0%}",
            stats.success_rate > TARGET_SUCCESS_RATE,
        ),
    ]
    extra = {
        "windowSeconds": stats.window_seconds,
        "requests": stats.requests,
        "errors": stats.errors,
        "rejected": stats.rejected,
        "maxResponseMs": round(stats.max_ms, 1),
        "processMemoryBytes": process_memory_bytes(),
        "uptimeSeconds": round(uptime_seconds()),
    }
    return out, extra


async def system_health(ops: OpsRuntime) -> dict[str, Any]:
    checks = await readiness_checks(ops.settings, ops.database)
    alerts = await ops.alerts.evaluate()
    figs, extra = figures(ops)
    if not checks[0].ok:
        status = "down"
    elif alerts or not all(c.ok for c in checks) or not all(f.ok for f in figs):
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "checkedAt": now_utc().isoformat(),
        "figures": [asdict(f) for f in figs],
        **extra,
        "checks": [c.as_dict() for c in checks],
        "alerts": [a.as_dict() for a in alerts],
    }


DATA_TYPES = ("system-health", "dashboard")


async def data_endpoint(request: Request) -> JSONResponse:
    ops = runtime_of(request)
    principal, why = operator_principal(request, ops.settings)
    headers = {"Cache-Control": "no-store"}
    if principal is None:
        return JSONResponse(
            {"error": "UNAUTHENTICATED", "message": why},
            status_code=401,
            headers={**headers, "WWW-Authenticate": "Bearer"},
        )
    if principal.role is not Role.PLATFORM_ADMIN:
        return JSONResponse(
            {"error": "FORBIDDEN", "message": "Platform admins only."},
            status_code=403,
            headers=headers,
        )
    kind = request.query_params.get("type", "")
    if kind not in DATA_TYPES:
        return JSONResponse(
            {"error": "VALIDATION", "message": f"type must be one of: {', '.join(DATA_TYPES)}"},
            status_code=400,
            headers=headers,
        )
    body: dict[str, Any] = {"type": kind, **await system_health(ops)}
    if kind == "dashboard":
        body["business"] = (await business_metrics(ops.database)).as_dict()
    return JSONResponse(body, headers=headers)
