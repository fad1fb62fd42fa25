"""Circuit breakers per (clinic, plugin): stop calling a provider that keeps failing.

closed -> (N consecutive failures) -> open -> (reset time passes) -> half-open:
one trial call; success closes, failure re-opens. State is per process (each
worker learns on its own), which is enough to shed load from a dead provider.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class Breaker:
    threshold: int
    reset_seconds: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False
    last_error: str | None = None
    last_error_code: str | None = None
    last_failure_wall: datetime | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() - self.opened_at >= self.reset_seconds else OPEN

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_seconds - (self.clock() - self.opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one trial at a time."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_running = 0, None, False

    def failure(self, code: str, message: str) -> None:
        self.failures += 1
        self.trial_running = False
        self.last_error, self.last_error_code = message, code
        self.last_failure_wall = datetime.now(UTC)
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()  # (re)open; a failed trial waits a full period again

    def release(self) -> None:
        """A call that neither succeeded nor failed (e.g. rejected request) frees the trial slot."""
        self.trial_running = False


class Breakers:
    def __init__(
        self, threshold: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._breakers: dict[tuple[uuid.UUID, str], Breaker] = {}

    def get(self, clinic_id: uuid.UUID, plugin: str) -> Breaker:
        key = (clinic_id, plugin)
        if key not in self._breakers:
            self._breakers[key] = Breaker(self.threshold, self.reset_seconds, self.clock)
        return self._breakers[key]

    def peek(self, clinic_id: uuid.UUID, plugin: str) -> Breaker | None:
        return self._breakers.get((clinic_id, plugin))

    def reset(self, clinic_id: uuid.UUID, plugin: str) -> None:
        self._breakers.pop((clinic_id, plugin), None)
