"""Alert rules from the operations manual, evaluated over the sliding window.

Critical: system down (database unreachable > ALERT_DOWNTIME_SECONDS), error rate
> 5%, DB connections > 90% of the pool, payment processing failures.
Warning: average response time > 500 ms, error rate > 1%, DB connections > 80%,
TLS certificate expiring in < 30 days. Each alert also carries the manual's
incident priority (P0-P3).

Notifications go to every function registered with `add_notifier` when an alert
starts firing and when it resolves. The plugin layer connects its `alert` hook
with one call:

    from gateway.ops.alerts import add_notifier
    add_notifier(forward_to_plugins)   # async def forward_to_plugins(alert: Alert) -> None
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from gateway.db.engine import Database
from gateway.ops import metrics
from gateway.ops.readiness import check_database
from gateway.ops.system import pool_ratio, tls_days_left
from gateway.ops.window import TrafficWindow, WindowStats, now_utc
from gateway.settings import Settings

log = logging.getLogger("santana.alerts")

CRITICAL, WARNING = "critical", "warning"
NOTIFY_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Alert:
    key: str  # the rule, e.g. "error_rate"; one alert per key at a time
    severity: str  # critical | warning
    priority: str  # P0 (immediate) … P3 (24 hours), as in the manual's incident levels
    title: str
    message: str
    value: float | None = None
    threshold: float | None = None
    since: datetime | None = None
    state: str = "firing"  # firing | resolved

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data


Notifier = Callable[[Alert], Awaitable[None] | None]
_notifiers: list[Notifier] = []


def add_notifier(notifier: Notifier) -> Callable[[], None]:
    """Call `notifier(alert)` whenever an alert fires or resolves; returns a remover."""
    _notifiers.append(notifier)
    return lambda: _notifiers.remove(notifier) if notifier in _notifiers else None


@dataclass(frozen=True)
class Snapshot:
    """What the rules look at; gathered by AlertEngine.snapshot(), or built by hand in tests."""

    stats: WindowStats
    db_ok: bool = True
    down_for_seconds: float = 0.0
    pool_ratio: float = 0.0
    tls_days: float | None = None
    tls_error: str | None = None


def evaluate_rules(snap: Snapshot, s: Settings) -> list[Alert]:
    """The rules themselves: a pure function of the snapshot and the thresholds."""
    alerts: list[Alert] = []
    stats = snap.stats
    minutes = f"{stats.window_seconds // 60} min"
    if not snap.db_ok and snap.down_for_seconds >= s.alert_downtime_seconds:
        alerts.append(
            Alert(
                "system_down",
                CRITICAL,
                "P0",
                "System down",
                f"Database unreachable for {snap.down_for_seconds:.0f} s",
                snap.down_for_seconds,
                s.alert_downtime_seconds,
            )
        )
    payment_failures = stats.events.get(metrics.PAYMENT_FAILURE_EVENT, 0)
    if payment_failures >= s.alert_payment_failures:
        alerts.append(
            Alert(
                "payment_failures",
                CRITICAL,
                "P0",
                "Payment processing failures",
                f"{payment_failures} payment provider call(s) failed in the last {minutes}",
                payment_failures,
                s.alert_payment_failures,
            )
        )
    if stats.requests >= s.alert_min_requests:
        rate = stats.error_rate
        if rate > s.alert_error_rate_critical:
            alerts.append(
                Alert(
                    "error_rate",
                    CRITICAL,
                    "P1",
                    "Error rate critical",
                    f"{rate:.1%} of {stats.requests} requests failed in the last {minutes}",
                    rate,
                    s.alert_error_rate_critical,
                )
            )
        elif rate > s.alert_error_rate_warning:
            alerts.append(
                Alert(
                    "error_rate",
                    WARNING,
                    "P2",
                    "Error rate elevated",
                    f"{rate:.1%} of {stats.requests} requests failed in the last {minutes}",
                    rate,
                    s.alert_error_rate_warning,
                )
            )
        if stats.avg_ms > s.alert_response_time_warning_ms:
            alerts.append(
                Alert(
                    "response_time",
                    WARNING,
                    "P2",
                    "Slow responses",
                    f"Average response time {stats.avg_ms:.0f} ms over the last {minutes}",
                    stats.avg_ms,
                    s.alert_response_time_warning_ms,
                )
            )
    if snap.pool_ratio > s.alert_db_pool_critical:
        alerts.append(
            Alert(
                "db_connections",
                CRITICAL,
                "P1",
                "Database pool nearly exhausted",
                f"{snap.pool_ratio:.0%} of the connection pool in use",
                snap.pool_ratio,
                s.alert_db_pool_critical,
            )
        )
    elif snap.pool_ratio > s.alert_db_pool_warning:
        alerts.append(
            Alert(
                "db_connections",
                WARNING,
                "P2",
                "Database pool busy",
                f"{snap.pool_ratio:.0%} of the connection pool in use",
                snap.pool_ratio,
                s.alert_db_pool_warning,
            )
        )
    if snap.tls_error:
        alerts.append(
            Alert("tls_certificate", WARNING, "P2", "TLS certificate unreadable", snap.tls_error)
        )
    elif snap.tls_days is not None and snap.tls_days <= 0:
        alerts.append(
            Alert(
                "tls_certificate",
                CRITICAL,
                "P0",
                "TLS certificate expired",
                "The certificate at TLS_CERT_PATH has expired",
                snap.tls_days,
                0,
            )
        )
    elif snap.tls_days is not None and snap.tls_days < s.alert_tls_days:
        alerts.append(
            Alert(
                "tls_certificate",
                WARNING,
                "P3",
                "TLS certificate expiring",
                f"The certificate at TLS_CERT_PATH expires in {snap.tls_days:.0f} days",
                snap.tls_days,
                s.alert_tls_days,
            )
        )
    return alerts


class AlertEngine:
    """Evaluates the rules every ALERT_EVALUATION_SECONDS and notifies on changes."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        window: TrafficWindow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.database = database
        self.window = window
        self.clock = clock
        self.firing: dict[str, Alert] = {}
        self.evaluated_at: datetime | None = None
        self._down_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Snapshot:
        db_ok = (await check_database(self.database)).ok
        now = self.clock()
        if db_ok:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        tls_days, tls_error = None, None
        try:
            tls_days = tls_days_left(self.settings.tls_cert_path)
        except (OSError, ValueError) as exc:
            tls_error = f"cannot read TLS_CERT_PATH: {type(exc).__name__}"
        return Snapshot(
            stats=self.window.stats(),
            db_ok=db_ok,
            down_for_seconds=now - self._down_since if self._down_since is not None else 0.0,
            pool_ratio=pool_ratio(self.database),
            tls_days=tls_days,
            tls_error=tls_error,
        )

    async def evaluate(self, snap: Snapshot | None = None) -> list[Alert]:
        """Evaluate now; notify what started or stopped firing; return what fires."""
        async with self._lock:
            snap = snap or await self.snapshot()
            now = now_utc()
            current = {a.key: a for a in evaluate_rules(snap, self.settings)}
            started, resolved = [], []
            for key, alert in current.items():
                before = self.firing.get(key)
                same = before is not None and before.severity == alert.severity
                current[key] = replace(alert, since=before.since if same and before else now)
                if not same:
                    started.append(current[key])
            for key, alert in self.firing.items():
                if key not in current:
                    resolved.append(replace(alert, state="resolved"))
            self.firing, self.evaluated_at = current, now
            for severity in (CRITICAL, WARNING):
                metrics.ALERTS_FIRING.labels(severity).set(
                    sum(a.severity == severity for a in current.values())
                )
        for alert in started + resolved:
            await notify(alert)
        return self.active()

    def active(self) -> list[Alert]:
        order = {CRITICAL: 0, WARNING: 1}
        return sorted(
            self.firing.values(), key=lambda a: (order.get(a.severity, 2), a.priority, a.key)
        )

    async def _loop(self, stop: asyncio.Event) -> None:
        # Wait first: at startup the window is empty, and pages evaluate on demand anyway.
        while not await _stopped(stop, self.settings.alert_evaluation_seconds):
            try:
                await self.evaluate()
            except Exception:  # a failed evaluation must not stop the next one
                log.exception("alert evaluation failed")

    def start(self) -> None:
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._loop(self._stop), name="santana-alerts")

    async def stop(self) -> None:
        """Let a running evaluation finish (its DB check has a timeout) rather than cancel
        it mid-query, which can leave a pooled connection that dispose() then waits on."""
        if self._task is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def notify(alert: Alert) -> None:
    """Log the alert as one JSON line, then hand it to every registered notifier."""
    level = (
        logging.ERROR if alert.severity == CRITICAL and alert.state == "firing" else logging.WARNING
    )
    log.log(level, orjson.dumps({"alert": alert.as_dict()}).decode())
    for notifier in list(_notifiers):
        try:
            outcome = notifier(alert)
            if outcome is not None:
                await asyncio.wait_for(outcome, NOTIFY_TIMEOUT_SECONDS)
        except Exception:  # one broken channel must not silence the others
            log.exception("alert notifier %r failed", getattr(notifier, "__name__", notifier))
