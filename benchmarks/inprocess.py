"""One worker's cost per request, in-process, without wrk: a quick loop for optimisation work.

Needs the database `make bench` left behind. Sends N requests of a kind one after
another through the full ASGI stack (httpx's ASGI transport) and reports the
median and mean time per request and how much of it Python's cyclic garbage
collector took (timed with gc.callbacks), once with the default GC and once
with the GC tuned (gc.freeze() after start-up and a higher gen-0 threshold).

    .venv/bin/python -m benchmarks.inprocess [--kind dashboard|day] [-n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from benchmarks.config import APP_ROLE, pg_url
from benchmarks.scenarios import DASHBOARD, DAY_VIEW
from benchmarks.servers import Secrets, gateway_env
from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.models import Role
from gateway.settings import Settings, load_settings
from schema.ids import to_global_id


class GcTimer:
    def __init__(self) -> None:
        self.seconds, self.collections, self._t0 = 0.0, [0, 0, 0], 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0
            self.collections[info["generation"]] += 1


async def _target(kind: str) -> tuple[Principal, dict[str, Any]]:
    conn = await asyncpg.connect(pg_url())
    try:
        role = "clinic_admin" if kind == "dashboard" else "counselor"
        row = await conn.fetchrow(
            "SELECT id, clinic_id FROM users WHERE role = $1 ORDER BY email LIMIT 1", role
        )
        principal = Principal(user_id=row["id"], role=Role(role), clinic_id=row["clinic_id"])
        if kind == "dashboard":
            return principal, {"query": DASHBOARD, "variables": {"first": 50}}
        day = await conn.fetchval(
            "SELECT min(starts_at) FROM counseling_sessions WHERE counselor_id = $1", row["id"]
        )
        start = datetime.combine(day.date(), datetime.min.time(), tzinfo=UTC)
        return principal, {
            "query": DAY_VIEW,
            "variables": {
                "from": start.isoformat(),
                "to": (start + timedelta(days=1)).isoformat(),
                "counselor": to_global_id("User", row["id"]),
            },
        }
    finally:
        await conn.close()


async def measure(settings: Settings, kind: str, n: int, tuned: bool) -> dict[str, float]:
    principal, payload = await _target(kind)
    token, _ = issue_access_token(principal, settings.jwt_secret, 3600)
    app = create_app(settings)
    timer = GcTimer()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(20):  # warm caches, pools and the parser/validation caches
                r = await http.post("/graphql", json=payload, headers=headers)
                assert r.status_code == 200 and "errors" not in r.json(), r.text[:300]
            if tuned:
                gc.collect()
                gc.freeze()  # start-up objects are never scanned again
                gc.set_threshold(50_000, 20, 100)
            gc.callbacks.append(timer)
            times = []
            try:
                for _ in range(n):
                    t0 = time.perf_counter()
                    await http.post("/graphql", json=payload, headers=headers)
                    times.append(time.perf_counter() - t0)
            finally:
                gc.callbacks.remove(timer)
                gc.unfreeze()
                gc.set_threshold(700, 10, 10)
    return {
        "median_ms": 1000 * statistics.median(times),
        "mean_ms": 1000 * statistics.fmean(times),
        "gc_ms_per_req": 1000 * timer.seconds / n,
        "gen2": timer.collections[2],
        "gen1": timer.collections[1],
        "gen0": timer.collections[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=["dashboard", "day"], default="dashboard")
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    env = gateway_env(Secrets(), 1)
    fields = {
        k.lower(): v for k, v in env.items() if k.isupper() and k.lower() in Settings.model_fields
    }
    settings = load_settings(
        **{
            **fields,
            "access_log": "false",
            "database_url": pg_url(APP_ROLE, driver="postgresql+asyncpg"),
        }
    )
    for tuned in (False, True):
        r = asyncio.run(measure(settings, args.kind, args.n, tuned))
        label = "gc tuned (freeze + 50000/20/100)" if tuned else "gc default (700/10/10)"
        print(
            f"{args.kind:9} {label:34} median {r['median_ms']:6.1f} ms  mean {r['mean_ms']:6.1f} ms  "
            f"gc {r['gc_ms_per_req']:5.1f} ms/req  collections gen0/1/2 {r['gen0']:.0f}/{r['gen1']:.0f}/{r['gen2']:.0f}"
        )


if __name__ == "__main__":
    main()
