"""Recent traffic in memory: a sliding window of per-bucket totals, and the last errors.

The alert rules and the operator pages read figures "over the last N minutes".
Keeping one small bucket per few seconds (not one entry per request) bounds the
memory however busy the gateway is. State is per process, like the circuit
breakers: each worker judges its own traffic.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

OK, REJECTED, ERROR = "ok", "rejected", "error"


@dataclass
class OpTotals:
    count: int = 0
    errors: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0

    def add(self, seconds: float, outcome: str) -> None:
        self.count += 1
        self.errors += outcome == ERROR
        self.duration_sum += seconds
        self.duration_max = max(self.duration_max, seconds)

    def merge(self, other: OpTotals) -> None:
        self.count += other.count
        self.errors += other.errors
        self.duration_sum += other.duration_sum
        self.duration_max = max(self.duration_max, other.duration_max)


@dataclass
class _Bucket:
    start: int
    total: OpTotals = field(default_factory=OpTotals)
    rejected: int = 0
    by_operation: dict[str, OpTotals] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationStats:
    operation: str
    count: int
    errors: int
    avg_ms: float
    max_ms: float


@dataclass(frozen=True)
class WindowStats:
    window_seconds: int
    requests: int
    errors: int
    rejected: int
    avg_ms: float
    max_ms: float
    operations: list[OperationStats]
    events: dict[str, int]

    @property
    def error_rate(self) -> float:
        """Share of requests that failed on our side (5xx, INTERNAL, provider down)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def success_rate(self) -> float:
        """Share of requests answered without any error (what a client calls success)."""
        return (
            (self.requests - self.errors - self.rejected) / self.requests if self.requests else 1.0
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request as the debug page lists it: identifiers and timings, never PHI."""

    at: datetime
    request_id: str
    operation: str
    status: int
    outcome: str
    duration_ms: float
    error_codes: tuple[str, ...] = ()


class TrafficWindow:
    def __init__(
        self,
        window_seconds: int = 300,
        bucket_seconds: int = 5,
        keep_recent: int = 50,
        slow_ms: float = 500.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self.bucket_seconds = bucket_seconds
        self.slow_ms = slow_ms
        self.clock = clock
        self._buckets: deque[_Bucket] = deque()
        self.recent_errors: deque[RequestRecord] = deque(maxlen=keep_recent)
        self.recent_slow: deque[RequestRecord] = deque(maxlen=keep_recent)

    def _bucket(self) -> _Bucket:
        start = int(self.clock() // self.bucket_seconds) * self.bucket_seconds
        if not self._buckets or self._buckets[-1].start != start:
            self._buckets.append(_Bucket(start))
            self._expire()
        return self._buckets[-1]

    def _expire(self) -> None:
        oldest = self.clock() - self.window_seconds
        while self._buckets and self._buckets[0].start + self.bucket_seconds <= oldest:
            self._buckets.popleft()

    def observe(
        self, operation: str, seconds: float, outcome: str, record: RequestRecord | None = None
    ) -> None:
        bucket = self._bucket()
        bucket.total.add(seconds, outcome)
        bucket.rejected += outcome == REJECTED
        bucket.by_operation.setdefault(operation, OpTotals()).add(seconds, outcome)
        if record is not None:
            if outcome == ERROR:
                self.recent_errors.appendleft(record)
            if record.duration_ms >= self.slow_ms:
                self.recent_slow.appendleft(record)

    def count(self, event: str, n: int = 1) -> None:
        """Count a named event (payment failure, failed login, …) in the current bucket."""
        events = self._bucket().events
        events[event] = events.get(event, 0) + n

    def stats(self) -> WindowStats:
        self._expire()
        total, rejected = OpTotals(), 0
        ops: dict[str, OpTotals] = {}
        events: dict[str, int] = {}
        for bucket in self._buckets:
            total.merge(bucket.total)
            rejected += bucket.rejected
            for name, op in bucket.by_operation.items():
                ops.setdefault(name, OpTotals()).merge(op)
            for name, n in bucket.events.items():
                events[name] = events.get(name, 0) + n
        operations = sorted(
            (
                OperationStats(
                    name,
                    op.count,
                    op.errors,
                    1000 * op.duration_sum / op.count,
                    1000 * op.duration_max,
                )
                for name, op in ops.items()
            ),
            key=lambda o: o.avg_ms,
            reverse=True,
        )
        return WindowStats(
            window_seconds=self.window_seconds,
            requests=total.count,
            errors=total.errors,
            rejected=rejected,
            avg_ms=1000 * total.duration_sum / total.count if total.count else 0.0,
            max_ms=1000 * total.duration_max,
            operations=operations,
            events=events,
        )


def now_utc() -> datetime:
    return datetime.now(UTC)
