"""SQL statements per request: each scenario's operations run once in-process and counted.

The app is built with the benchmark's own settings and database, and the request
goes through the whole ASGI stack (httpx's ASGI transport), so the count is what
a served request costs. Background work (the read-audit flush) is not counted
here; the runner reports the audit rows it writes separately.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from benchmarks.scenarios import CANCEL, RESCHEDULE, SCHEDULE, Requests
from gateway.app import create_app
from gateway.db.engine import count_statements
from gateway.settings import load_settings


async def count_all(
    env: dict[str, str], req: Requests, write_at: tuple[str, str]
) -> dict[str, int]:
    """{kind: statements} for one request of each kind (writes use the held-back targets)."""
    overrides = {k.lower(): v for k, v in env.items() if k.isupper() and k.lower() in _FIELDS}
    overrides["access_log"] = "false"  # keeps the console readable; it issues no SQL
    settings = load_settings(**overrides)
    app = create_app(settings)
    counts: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for kind in ("dashboard", "day", "patient", "me"):
                sample = req.reads[kind][0]
                counts[kind] = await _count(http, sample["t"], json.loads(sample["b"]))
            s = req.held_back["schedule"]
            write_input: dict[str, Any] = {
                "patientId": s["p"],
                "startsAt": write_at[0],
                "durationMinutes": 50,
                "modality": "VIDEO",
                "feeAmount": 15000,
            }
            if s["c"]:
                write_input["counselorId"] = s["c"]
            counts["schedule"] = await _count(
                http, s["t"], {"query": SCHEDULE, "variables": {"input": write_input}}
            )
            r = req.held_back["reschedule"]
            counts["reschedule"] = await _count(
                http, r["t"], {"query": RESCHEDULE, "variables": {"id": r["id"], "at": write_at[1]}}
            )
            c = req.held_back["cancel"]
            counts["cancel"] = await _count(
                http, c["t"], {"query": CANCEL, "variables": {"id": c["id"]}}
            )
    return counts


async def _count(http: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> int:
    async with count_statements() as counter:
        r = await http.post("/graphql", json=payload, headers={"Authorization": f"Bearer {token}"})
    body = r.json()
    if r.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"statement count request failed: {r.status_code} {body}")
    return counter.count


def _fields() -> frozenset[str]:
    from gateway.settings import Settings

    return frozenset(Settings.model_fields)


_FIELDS = _fields()
