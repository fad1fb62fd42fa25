"""SIGTERM to `santana serve` mid-request: the request still gets its complete answer,
subscriptions are told to reconnect elsewhere (1012), new connections are refused,
and the process exits cleanly once drained.

The request is held in flight by a row lock the test takes on the counselor it books
(PostgreSQL's FOR UPDATE), so "mid-request" is certain rather than a race.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.settings import load_settings
from schema.ids import to_global_id
from tests.factories import World, tomorrow_at
from tests.realtime.conftest import token
from tests.realtime.wsclient import SCHEDULE, SESSION_CHANGED, connect, free_port

pytestmark = pytest.mark.postgres_only


def serve(database_url: str, port: int, logs: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "ACCESS_LOG": "false",
        "OUTBOX_IN_PROCESS": "false",
        "SHUTDOWN_DRAIN_SECONDS": "15",
    }
    santana = Path(sys.executable).parent / "santana"
    process = subprocess.Popen(
        [str(santana), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=(logs / "serve.log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (logs / "serve.log").read_text()
        time.sleep(0.2)
    process.kill()
    raise AssertionError("santana serve did not come up")


async def test_sigterm_mid_request_still_answers_it_and_closes_subscriptions_with_1012(
    database_url: str, owner_url: str, world: World, tmp_path: Path
) -> None:
    """Tried: A's admin books while the counselor's row is locked; SIGTERM arrives while
    the booking waits; a subscriber is connected; the lock is released a second later."""
    a = world.a
    settings = load_settings(app_env="test", database_url=database_url)
    port = free_port()
    process = serve(settings.database_url, port, tmp_path)
    base = f"http://127.0.0.1:{port}"
    owner = create_async_engine(owner_url)
    try:
        async with connect(f"ws://127.0.0.1:{port}/graphql", token(settings, a.counselor)) as sub:
            await sub.subscribe(SESSION_CHANGED)
            async with owner.connect() as lock:
                await lock.execute(
                    text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": a.counselor.id}
                )
                variables = {
                    "input": {
                        "patientId": to_global_id("Patient", a.own_patient.id),
                        "counselorId": to_global_id("User", a.counselor.id),
                        "startsAt": tomorrow_at(11).isoformat(),
                    }
                }
                headers = {"Authorization": f"Bearer {token(settings, a.admin)}"}
                async with httpx.AsyncClient(timeout=30) as http:
                    booking = asyncio.create_task(
                        http.post(
                            f"{base}/graphql",
                            json={"query": SCHEDULE, "variables": variables},
                            headers=headers,
                        )
                    )
                    await asyncio.sleep(1.0)
                    assert not booking.done(), "the booking should be waiting for the lock"
                    process.send_signal(signal.SIGTERM)

                    with pytest.raises(websockets.ConnectionClosed):
                        await sub.message(within=5)
                    assert sub.ws.close_code == 1012  # service restart: reconnect elsewhere
                    with pytest.raises(httpx.ConnectError):
                        await http.get(f"{base}/api/health")  # no longer accepting

                    await lock.rollback()  # the held request may now finish
                    response = await booking
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors") and body["data"]["scheduleSession"]["id"], body
        # uvicorn re-raises the SIGTERM once drained, so the exit status still says why.
        assert await asyncio.to_thread(process.wait, 30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    finally:
        await owner.dispose()
        if process.poll() is None:
            process.kill()
