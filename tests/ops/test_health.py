"""Liveness, readiness, /api/data, /metrics and the access log, as operators see them."""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.ops import metrics
from gateway.ops.access_log import AccessLogMiddleware
from gateway.ops.window import TrafficWindow
from gateway.settings import Settings, load_settings
from tests.factories import World
from tests.ops.conftest import bearer, gql


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_liveness_needs_no_database_and_readiness_says_why(tmp_path: Any) -> None:
    # A database file in a directory that does not exist: nothing can connect.
    settings = load_settings(
        app_env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db"
    )
    database = Database(settings.database_url)
    app = create_app(settings, database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        live = await http.get("/api/health")
        ready = await http.get("/api/ready")
    await database.dispose()
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert any(reason.startswith("database:") for reason in body["reasons"])
    assert body["checks"]["migrations"]["ok"] is False


async def test_ready_when_at_head_and_503_with_the_fix_when_behind(
    http: httpx.AsyncClient, owner_url: str
) -> None:
    ok = await http.get("/api/ready")
    assert ok.status_code == 200, ok.text
    assert ok.json()["checks"]["migrations"]["ok"] is True
    assert ok.json()["checks"]["redis"]["detail"].startswith("not configured")
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            head = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        behind = await http.get("/api/ready")
        assert behind.status_code == 503
        assert any("migrations" in r and "expects" in r for r in behind.json()["reasons"])
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        await engine.dispose()


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("reachable", [True, False])
async def test_ready_checks_redis_when_configured(
    settings: Settings, database: Database, reachable: bool
) -> None:
    if reachable and not _redis_up():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Redis readiness test (redis-server on 127.0.0.1:6379)")
        pytest.skip("Redis not running on 127.0.0.1:6379")
    url = "redis://127.0.0.1:6379/0" if reachable else "redis://127.0.0.1:1/0"
    app = create_app(settings.model_copy(update={"redis_url": url}), database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/api/ready")
    if reachable:
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["redis"] == {"ok": True, "detail": "answers PING"}
    else:
        assert response.status_code == 503
        assert any(r.startswith("redis:") for r in response.json()["reasons"])


async def test_api_data_is_for_platform_admins(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    assert (await http.get("/api/data?type=system-health")).status_code == 401
    garbage = await http.get(
        "/api/data?type=system-health", headers={"Authorization": "Bearer nope"}
    )
    assert garbage.status_code == 401
    staff = await http.get("/api/data?type=system-health", headers=bearer(world.a.admin, settings))
    assert staff.status_code == 403
    admin = bearer(world.platform_admin, settings)
    assert (await http.get("/api/data?type=everything", headers=admin)).status_code == 400

    health = await http.get("/api/data?type=system-health", headers=admin)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] in {"healthy", "degraded"}
    figures = {f["key"]: f for f in body["figures"]}
    assert set(figures) == {"response_time_ms", "error_rate", "db_pool", "memory", "success_rate"}
    assert figures["response_time_ms"]["target"] == "< 200 ms"
    assert figures["error_rate"]["target"] == "< 0.5%"
    assert {c["name"] for c in body["checks"]} == {"database", "migrations", "redis"}

    dashboard = (await http.get("/api/data?type=dashboard", headers=admin)).json()
    assert dashboard["business"]["totalClinics"] == 2
    assert dashboard["business"]["totalPatients"] == 6
    assert dashboard["figures"]


async def test_metrics_count_operations_outcomes_and_failed_logins(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    ok_before = sample("santana_request_duration_seconds_count", operation="WhoAmI", outcome="ok")
    rejected_before = sample("santana_request_errors_total", operation="WhoAmI", outcome="rejected")
    failed_before = sample("santana_failed_logins_total", reason="bad_password")

    me = "query WhoAmI { me { id } }"
    assert (await gql(http, me, headers=bearer(world.a.counselor, settings))).json()["data"]["me"]
    assert (await gql(http, me)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    login = 'mutation { login(email: "counselor@a.test", password: "wrong-pw-1") { user { id } } }'
    failed = (await gql(http, login)).json()
    assert failed["errors"], failed

    assert (
        sample("santana_request_duration_seconds_count", operation="WhoAmI", outcome="ok")
        == ok_before + 1
    )
    assert (
        sample("santana_request_errors_total", operation="WhoAmI", outcome="rejected")
        == rejected_before + 1
    )
    assert sample("santana_failed_logins_total", reason="bad_password") == failed_before + 1

    scrape = await http.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    text_ = scrape.text
    assert (
        'santana_request_duration_seconds_bucket{le="0.2",operation="WhoAmI",outcome="ok"}' in text_
    )
    for family in (
        "santana_db_pool_in_use",
        "santana_db_pool_size",
        "santana_memory_usage_ratio",
        "process_resident_memory_bytes",
        "santana_outbox_depth",
        "santana_outbox_dead_letters",
        "santana_plugin_call_duration_seconds",
        "santana_plugin_call_failures_total",
        "santana_rate_limit_rejections_total",
        "santana_failed_logins_total",
    ):
        assert f"# TYPE {family}" in text_, family
    # No ids or PHI in labels: the only label values are names we chose.
    assert str(world.a.counselor.id) not in text_ and "counselor@a.test" not in text_


async def test_metrics_can_require_a_token(settings: Settings, database: Database) -> None:
    app = create_app(settings.model_copy(update={"metrics_token": "scrape-secret"}), database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (
            await http.get("/metrics", headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
        assert (
            await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        ).status_code == 200


def test_plugin_call_api_updates_the_registered_series() -> None:
    before = sample(
        "santana_plugin_call_failures_total",
        plugin="mail_x",
        kind="email",
        hook="send_email",
        outcome="timeout",
    )
    metrics.observe_plugin_call("mail_x", "email", "send_email", 0.3, "timeout")
    metrics.observe_plugin_call("mail_x", "email", "send_email", 0.1, "ok")
    metrics.set_outbox_depth(7)
    metrics.set_dead_letters(2)
    assert (
        sample(
            "santana_plugin_call_failures_total",
            plugin="mail_x",
            kind="email",
            hook="send_email",
            outcome="timeout",
        )
        == before + 1
    )
    assert (
        sample(
            "santana_plugin_call_duration_seconds_count",
            plugin="mail_x",
            kind="email",
            hook="send_email",
        )
        >= 2
    )
    assert sample("santana_outbox_depth") == 7 and sample("santana_outbox_dead_letters") == 2


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_access_log_is_one_json_line_without_phi_or_tokens(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    handler = _Lines()
    logger = logging.getLogger("santana.access")
    logger.addHandler(handler)
    try:
        auth = bearer(world.a.admin, settings)
        query = (
            "query FindPatients($q: String) "
            "{ patients(search: $q) { nodes { firstName lastName email } } }"
        )
        response = await gql(http, query, {"q": "Pat1"}, headers=auth)
    finally:
        logger.removeHandler(handler)
    assert response.json()["data"]["patients"]["nodes"]
    assert len(handler.lines) == 1
    line = handler.lines[0]
    entry = json.loads(line)
    assert entry["request_id"] == response.headers["x-request-id"]
    assert (
        entry["operation"] == "FindPatients" and entry["status"] == 200 and entry["outcome"] == "ok"
    )
    assert entry["user_id"] == str(world.a.admin.id) and entry["clinic_id"] == str(
        world.a.clinic.id
    )
    assert entry["duration_ms"] > 0
    token = auth["Authorization"].split()[1]
    for secret in (token, "Pat1", "ClinicA", "pat0@a.example", "Authorization"):
        assert secret not in line


async def test_rate_limit_rejections_are_counted_from_responses() -> None:
    async def limited(request: Any) -> PlainTextResponse:
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "30"})

    inner = Starlette(routes=[Route("/graphql", limited, methods=["POST"])])
    app = AccessLogMiddleware(inner, TrafficWindow(), enabled=False)
    before = sample("santana_rate_limit_rejections_total", route="/graphql")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        assert (await http.post("/graphql")).status_code == 429
    assert sample("santana_rate_limit_rejections_total", route="/graphql") == before + 1
