"""The manual's alert rules: thresholds, priorities, the window, notifications, GraphQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.db.engine import Database
from gateway.ops import metrics
from gateway.ops.alerts import Alert, AlertEngine, Snapshot, add_notifier, evaluate_rules
from gateway.ops.production import tls_check
from gateway.ops.runtime import OpsRuntime
from gateway.ops.window import ERROR, OK, REJECTED, TrafficWindow
from gateway.settings import Settings, load_settings
from tests.factories import World
from tests.ops.conftest import bearer, gql

S = load_settings(app_env="test")


def stats(
    requests: int = 0, errors: int = 0, avg_ms: float = 50.0, events: dict[str, int] | None = None
) -> Any:
    window = TrafficWindow(clock=lambda: 1000.0)
    for i in range(requests):
        window.observe("Op", avg_ms / 1000, ERROR if i < errors else OK)
    for name, n in (events or {}).items():
        window.count(name, n)
    return window.stats()


def fired(snap: Snapshot) -> set[tuple[str, str, str]]:
    return {(a.key, a.severity, a.priority) for a in evaluate_rules(snap, S)}


@pytest.mark.parametrize(
    ("snap", "expected"),
    [
        (Snapshot(stats(100)), set()),
        (Snapshot(stats(100, errors=2)), {("error_rate", "warning", "P2")}),
        (Snapshot(stats(100, errors=6)), {("error_rate", "critical", "P1")}),
        (Snapshot(stats(100, errors=1)), set()),  # 1% is the line, not over it
        (Snapshot(stats(5, errors=5)), set()),  # too few requests to judge a rate
        (Snapshot(stats(100, avg_ms=650)), {("response_time", "warning", "P2")}),
        (Snapshot(stats(100, avg_ms=450)), set()),
        (Snapshot(stats(), pool_ratio=0.85), {("db_connections", "warning", "P2")}),
        (Snapshot(stats(), pool_ratio=0.95), {("db_connections", "critical", "P1")}),
        (Snapshot(stats(), db_ok=False, down_for_seconds=30), set()),
        (Snapshot(stats(), db_ok=False, down_for_seconds=61), {("system_down", "critical", "P0")}),
        (
            Snapshot(stats(events={metrics.PAYMENT_FAILURE_EVENT: 1})),
            {("payment_failures", "critical", "P0")},
        ),
        (Snapshot(stats(), tls_days=12), {("tls_certificate", "warning", "P3")}),
        (Snapshot(stats(), tls_days=45), set()),
        (Snapshot(stats(), tls_days=-1), {("tls_certificate", "critical", "P0")}),
    ],
)
def test_rules_follow_the_manual(snap: Snapshot, expected: set[tuple[str, str, str]]) -> None:
    assert fired(snap) == expected


def test_window_forgets_old_traffic() -> None:
    now = [0.0]
    window = TrafficWindow(window_seconds=60, clock=lambda: now[0])
    for _ in range(10):
        window.observe("Op", 0.1, ERROR)
    window.observe("Op", 0.1, REJECTED)
    first = window.stats()
    assert (first.requests, first.errors, first.rejected) == (11, 10, 1)
    assert first.error_rate == pytest.approx(10 / 11) and first.success_rate == 0
    now[0] = 30.0
    window.observe("Op", 0.1, OK)
    assert window.stats().requests == 12
    now[0] = 70.0  # the first burst is now older than the window
    later = window.stats()
    assert (later.requests, later.errors) == (1, 0)


async def test_engine_notifies_when_an_alert_fires_and_resolves(database: Database) -> None:
    now = [0.0]
    window = TrafficWindow(window_seconds=60, clock=lambda: now[0])
    engine = AlertEngine(S, database, window)
    received: list[Alert] = []

    async def channel(alert: Alert) -> None:
        received.append(alert)

    def broken(alert: Alert) -> None:
        raise RuntimeError("pager is down")

    remove_broken, remove = add_notifier(broken), add_notifier(channel)
    try:
        for i in range(40):
            window.observe("Op", 0.05, ERROR if i < 4 else OK)
        firing = await engine.evaluate()
        assert [(a.key, a.severity, a.state) for a in firing] == [
            ("error_rate", "critical", "firing")
        ]
        await engine.evaluate()  # still firing: no second notification
        assert [(a.key, a.state) for a in received] == [("error_rate", "firing")]
        now[0] = 120.0
        assert await engine.evaluate() == []
        assert [(a.key, a.state) for a in received] == [
            ("error_rate", "firing"),
            ("error_rate", "resolved"),
        ]
    finally:
        remove()
        remove_broken()


async def test_payment_failures_reach_the_alerts_through_the_metrics_api(ops: OpsRuntime) -> None:
    metrics.observe_plugin_call(
        "pay_stripe", "payment", "create_payment", 0.4, "rejected"
    )  # a decline
    assert "payment_failures" not in {a.key for a in await ops.alerts.evaluate()}
    metrics.observe_plugin_call("pay_stripe", "payment", "create_payment", 2.0, "timeout")
    alerts = {a.key: a for a in await ops.alerts.evaluate()}
    assert alerts["payment_failures"].priority == "P0"
    assert alerts["payment_failures"].severity == "critical"


def _certificate(path: Path, days: int) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "santana.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=60))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


async def test_tls_certificate_expiry_is_a_warning_and_a_readiness_failure(
    database: Database, tmp_path: Path
) -> None:
    settings = S.model_copy(update={"tls_cert_path": str(_certificate(tmp_path / "cert.pem", 12))})
    engine = AlertEngine(settings, database, TrafficWindow())
    alerts = await engine.evaluate()
    assert [(a.key, a.severity, a.priority) for a in alerts] == [
        ("tls_certificate", "warning", "P3")
    ]
    assert "12 days" in alerts[0].message or "11 days" in alerts[0].message
    check = tls_check(settings)
    assert not check.ok and "Renew" in (check.fix or "")
    fresh = S.model_copy(update={"tls_cert_path": str(_certificate(tmp_path / "new.pem", 90))})
    assert tls_check(fresh).ok


async def test_alerts_in_graphql_for_platform_admins_only(
    http: httpx.AsyncClient, ops: OpsRuntime, world: World, settings: Settings
) -> None:
    for i in range(50):
        ops.window.observe("Op", 0.05, ERROR if i < 5 else OK)
    query = "{ alerts { key severity priority title message value threshold since } }"
    denied = (await gql(http, query, headers=bearer(world.a.admin, settings))).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = (await gql(http, query, headers=bearer(world.platform_admin, settings))).json()["data"]
    # the GraphQL requests themselves joined the window (ok), so the rate is a little below 10%
    error_rate = next(a for a in data["alerts"] if a["key"] == "error_rate")
    assert error_rate["severity"] == "critical" and error_rate["priority"] == "P1"
    assert error_rate["threshold"] == 0.05 and error_rate["value"] > 0.05 and error_rate["since"]


async def test_the_evaluator_runs_on_its_own_and_stops_cleanly(database: Database) -> None:
    window = TrafficWindow()
    engine = AlertEngine(S.model_copy(update={"alert_evaluation_seconds": 0.05}), database, window)
    for i in range(30):
        window.observe("Op", 0.05, ERROR if i < 3 else OK)
    engine.start()
    try:
        for _ in range(100):
            if engine.firing:
                break
            await asyncio.sleep(0.02)
        assert set(engine.firing) == {"error_rate"}
    finally:
        await engine.stop()
    assert engine._task is None
