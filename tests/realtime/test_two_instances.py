"""Two gateway processes, one PostgreSQL, one Redis: a change made through instance 1
reaches a websocket subscribed on instance 2, and APQ documents are shared.

The processes are real uvicorn servers started as subprocesses; the client is the
`websockets` package speaking graphql-transport-ws, as a browser would.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings, load_settings
from schema.ids import to_global_id
from tests.factories import World, tomorrow_at
from tests.realtime.conftest import REDIS_URL, run_namespace, token
from tests.realtime.wsclient import SCHEDULE, connect, free_port, graphql

pytestmark = pytest.mark.postgres_only

RESCHEDULE = (
    """mutation($id: ID!, $at: DateTime!) { rescheduleSession(id: $id, startsAt: $at) { id } }"""
)
WATCH = "subscription { sessionChanged { change occurredAt session { id startsAt } } }"
ROUNDS = 20
GENERAL_LIMIT = 40  # requests per user and minute, counted across both instances


def start_instance(env: dict[str, str], logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_file = logs / f"instance-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=log_file.open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/ready", timeout=1).status_code == 200:
                return process, f"ws://127.0.0.1:{port}/graphql"
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise AssertionError(log_file.read_text())
        time.sleep(0.1)
    process.kill()
    raise AssertionError("instance did not become ready")


@pytest.fixture
def instance_settings(database_url: str) -> Settings:
    return load_settings(
        app_env="test",
        database_url=database_url,
        redis_url=REDIS_URL,
        rate_limit_namespace=run_namespace(),
    )


@pytest.fixture
def instances(instance_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": instance_settings.database_url,
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_NAMESPACE": instance_settings.rate_limit_namespace,
        "JWT_SECRET": instance_settings.jwt_secret,
        "OUTBOX_IN_PROCESS": "false",
        "ACCESS_LOG": "false",
        "RATE_LIMIT_GENERAL": f"{GENERAL_LIMIT}/minute",
    }
    started = [start_instance(env, tmp_path) for _ in range(2)]
    try:
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(10)


async def test_a_booking_on_instance_1_arrives_on_a_websocket_of_instance_2(
    instances: tuple[str, str], world: World, instance_settings: Settings
) -> None:
    """Tried: A's counselor subscribes on instance 2 and B's admin too; A's admin books
    and then reschedules the session 20 times through instance 1."""
    one, two = instances
    a = world.a
    admin_token = token(instance_settings, a.admin)
    async with (
        connect(two, token(instance_settings, a.counselor)) as counselor,
        connect(two, token(instance_settings, world.b.admin)) as b_admin,
    ):
        await counselor.subscribe(WATCH)
        await b_admin.subscribe(WATCH)
        await asyncio.sleep(0.3)
        variables = {
            "input": {
                "patientId": to_global_id("Patient", a.own_patient.id),
                "counselorId": to_global_id("User", a.counselor.id),
                "startsAt": tomorrow_at(9).isoformat(),
            }
        }
        session_id = (await graphql(one, admin_token, SCHEDULE, variables))["scheduleSession"]["id"]
        first = (await counselor.next())["data"]["sessionChanged"]
        assert (first["change"], first["session"]["id"]) == ("booked", session_id)

        latencies = []
        for i in range(ROUNDS):
            at = tomorrow_at(9) + timedelta(days=2 + i)  # slots nobody else holds
            await graphql(one, admin_token, RESCHEDULE, {"id": session_id, "at": at.isoformat()})
            event = (await counselor.next())["data"]["sessionChanged"]
            received = datetime.now(UTC)
            assert event["change"] == "rescheduled"
            occurred = datetime.fromisoformat(event["occurredAt"])
            latencies.append((received - occurred).total_seconds() * 1000)
        await b_admin.nothing_within(0.5)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(  # the figure docs/scaling.md quotes
        f"\nfan-out latency instance 1 -> Redis -> instance 2 websocket, {ROUNDS} changes: "
        f"p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms "
        "(from the change inside the transaction to the client's receipt)"
    )


async def test_persisted_queries_registered_on_one_instance_work_on_the_other(
    instances: tuple[str, str], world: World, instance_settings: Settings
) -> None:
    """Tried: the APQ hash + query sent to instance 1, then the hash alone to instance 2."""
    one, two = (url.replace("ws://", "http://", 1) for url in instances)
    query = "{ me { email } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    headers = {"Authorization": f"Bearer {token(instance_settings, world.a.admin)}"}
    async with httpx.AsyncClient(timeout=10) as http:
        unknown = await http.post(two, json={"extensions": apq}, headers=headers)
        assert "PERSISTED_QUERY_NOT_FOUND" in unknown.text
        registered = await http.post(one, json={"query": query, "extensions": apq}, headers=headers)
        assert registered.json()["data"]["me"]["email"] == world.a.admin.email
        by_hash = await http.post(two, json={"extensions": apq}, headers=headers)
        assert by_hash.json() == registered.json()


async def test_rate_limits_count_the_requests_made_on_both_instances(
    instances: tuple[str, str], world: World, instance_settings: Settings
) -> None:
    """Tried: A's counselor spends half the minute's allowance on each instance, then
    asks instance 2 once more."""
    one, two = (url.replace("ws://", "http://", 1) for url in instances)
    headers = {"Authorization": f"Bearer {token(instance_settings, world.a.counselor)}"}
    me = {"query": "{ me { email } }"}
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (one, two):
            for _ in range(GENERAL_LIMIT // 2):
                assert (await http.post(url, json=me, headers=headers)).status_code == 200
        over = await http.post(two, json=me, headers=headers)
    assert over.status_code == 429, over.text
