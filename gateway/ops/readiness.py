"""GET /api/ready: may this process take traffic? Database, schema version, Redis.

A load balancer polls it; the answer is 200 or 503 with the reasons. Each check
has a short timeout so a hung dependency makes the probe fail, not hang.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.db.engine import Database
from gateway.db.migrate import current_revision, head_revision
from gateway.settings import Settings

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False  # not applicable here (e.g. Redis not configured)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def expected_revision() -> str:
    return head_revision()


async def _timed(name: str, coro: Any) -> Check | Any:
    try:
        return await asyncio.wait_for(coro, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return Check(name, False, f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # the reason is the check's result
        return Check(name, False, f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    # Driver messages can be long; the first line names the problem. URLs and
    # passwords are not part of connection errors raised by asyncpg/aiosqlite.
    return (str(exc).splitlines() or [""])[0][:200]


async def check_database(database: Database) -> Check:
    async def probe() -> Check:
        async with database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return Check("database", True, f"{database.dialect} answers")

    return await _timed("database", probe())


async def check_migrations(database: Database) -> Check:
    async def probe() -> Check:
        current, head = await current_revision(database.engine), expected_revision()
        if current == head:
            return Check("migrations", True, f"at head {head}")
        return Check(
            "migrations",
            False,
            f"database at {current or 'nothing'}, code expects {head}",
            fix="run `santana migrate`",
        )

    return await _timed("migrations", probe())


async def check_redis(url: str | None) -> Check:
    if not url:
        return Check("redis", True, "not configured (REDIS_URL unset)", skipped=True)

    async def probe() -> Check:
        import redis.asyncio as redis

        client = redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            await client.ping()
        finally:
            await client.aclose()
        return Check("redis", True, "answers PING")

    return await _timed("redis", probe())


async def readiness_checks(settings: Settings, database: Database) -> list[Check]:
    db, redis_check = await asyncio.gather(
        check_database(database), check_redis(settings.redis_url)
    )
    migrations = (
        await check_migrations(database)
        if db.ok
        else Check("migrations", False, "database unreachable")
    )
    return [db, migrations, redis_check]


def ready_endpoint(settings: Settings, database: Database) -> Any:
    async def ready(request: Request) -> JSONResponse:
        checks = await readiness_checks(settings, database)
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
        body = {
            "status": "not_ready" if failed else "ready",
            "reasons": failed,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return JSONResponse(
            body, status_code=503 if failed else 200, headers={"Cache-Control": "no-store"}
        )

    return ready
