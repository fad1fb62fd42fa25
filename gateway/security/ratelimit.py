"""Rate limits (the `limits` library): general per user or IP, auth per account and IP, upload.

Counters live in process memory by default. With REDIS_URL set they live in Redis,
so every worker and every instance behind the load balancer shares one count.
A storage outage fails open (logged): the account lockout in the database still
stops password guessing, and an outage of Redis must not take the API down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import Counter
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.security.errors import RateLimited, error_body

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger("santana.ratelimit")

# Probes and scrapers must keep working while a client is being throttled.
EXEMPT_PATHS = frozenset({"/api/health", "/api/ready", "/metrics"})


def _storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # limits' async Redis storage, on the redis-py client (one Redis client for the project).
    scheme, sep, rest = redis_url.partition("://")
    if scheme not in ("redis", "rediss") or not sep:
        raise ValueError("REDIS_URL must start with redis:// or rediss://")
    storage = storage_from_string(f"async+{scheme}://{rest}", implementation="redispy")
    assert isinstance(storage, Storage)
    return storage


def _digest(value: str) -> str:
    # Emails and addresses are not stored in the counter keys as they are.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimiter:
    """The three limits of the operations manual, as settings."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.namespace = settings.rate_limit_namespace
        self.general = parse(settings.rate_limit_general)
        self.auth = parse(settings.rate_limit_auth)
        self.upload = parse(settings.rate_limit_upload)
        self.storage = _storage(settings.redis_url)
        # A true moving window: exact counts and Retry-After (a window counter can let
        # extra requests through around a window boundary).
        self._limiter = MovingWindowRateLimiter(self.storage)
        # Rejections by scope, read by the metrics endpoint.
        self.rejections: Counter[str] = Counter()

    @property
    def backend(self) -> str:
        return "memory" if isinstance(self.storage, MemoryStorage) else "redis"

    async def hit(self, item: RateLimitItem, scope: str, key: str) -> int | None:
        """Count one request; None if allowed, else the seconds until it would be."""
        if not self.enabled:
            return None
        ids = (self.namespace, scope, _digest(key))
        try:
            if await self._limiter.hit(item, *ids):
                return None
            stats = await self._limiter.get_window_stats(item, *ids)
        except Exception as exc:  # storage down: fail open, say so without the key
            log.warning("rate-limit storage unavailable (%s); allowing request", type(exc).__name__)
            return None
        self.rejections[scope] += 1
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check_general(self, key: str) -> int | None:
        return await self.hit(self.general, "general", key)

    async def check_upload(self, key: str) -> None:
        retry = await self.hit(self.upload, "upload", key)
        if retry is not None:
            raise RateLimited(retry, "upload")

    async def check_auth(self, *, ip: str | None, account: str | None) -> None:
        """Login, refresh and 2FA: 10/minute per account and per IP (both are counted)."""
        retries = []
        if ip:
            retries.append(await self.hit(self.auth, "auth-ip", ip))
        if account:
            retries.append(await self.hit(self.auth, "auth-account", account.strip().lower()))
        worst = max((r for r in retries if r is not None), default=None)
        if worst is not None:
            raise RateLimited(worst, "auth")

    async def close(self) -> None:
        # Redis connections belong to the app's event loop; release them with it.
        bridge = getattr(self.storage, "bridge", None)
        close = getattr(getattr(bridge, "storage", None), "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception:  # closing is best effort
                log.debug("rate-limit storage close failed", exc_info=True)


class RateLimitMiddleware:
    """The general limit for every HTTP request: per user when authenticated, else per IP.

    Runs after RequestContextMiddleware, so the Principal is already known.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get("principal")
        client = scope.get("client")
        key = (
            f"user:{principal.user_id}" if principal else f"ip:{client[0] if client else 'unknown'}"
        )
        retry = await self.limiter.check_general(key)
        if retry is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            error_body(
                "RATE_LIMITED",
                f"Too many requests; try again in {retry} seconds.",
                retryAfterSeconds=retry,
                scope="general",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(retry).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def limiter_of(request: object) -> RateLimiter | None:
    """The app's limiter, from a Starlette request (None outside an app, e.g. in unit tests)."""
    scope = getattr(request, "scope", None) or {}
    state = getattr(scope.get("app"), "state", None)
    return getattr(state, "rate_limiter", None)
