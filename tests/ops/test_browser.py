"""The operator pages in real headless Chromium (Debian's `chromium`), driven over DevTools.

A uvicorn server runs on 127.0.0.1; the browser logs in through the form, opens
each page, reads the figures and presses the retry button, as an operator does.
Skipped locally when chromium is absent; under CI=true its absence fails.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import OutboxMessage
from gateway.settings import Settings, load_settings
from tests.factories import PASSWORD, World, build_world

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return CHROMIUM


class Server:
    """The real app under uvicorn in a thread (its own event loop), on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Browser:
    """A minimal Chrome DevTools Protocol client: navigate, evaluate, wait."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, path_and_query: str) -> str:
        """Wait until the page at `path_and_query` has loaded; return its visible text."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = await self.js("[location.pathname + location.search, document.readyState]")
            if state == [path_and_query, "complete"]:
                return str(await self.js("document.body.innerText"))
            await asyncio.sleep(0.1)
        raise AssertionError(f"never reached {path_and_query}, at {state}")

    async def open(self, url: str, expect: str) -> str:
        await self.call("Page.navigate", url=url)
        return await self.wait_for(expect)

    async def fill_and_submit(self, fields: dict[str, str], button: str) -> None:
        for field_id, value in fields.items():
            await self.js(
                f"document.getElementById({json.dumps(field_id)}).value = {json.dumps(value)}"
            )
        await self.js(f"document.querySelector({json.dumps(button)}).click()")


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[Browser]:
    profile = tmp_path / "profile"
    proc = subprocess.Popen(  # noqa: S603, ASYNC220  (a fixed argv; starts once per test)
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            client = Browser(ws)
            await client.call("Page.enable")
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def sqlite_settings(sqlite_template: Path, tmp_path: Path) -> Iterator[Settings]:
    path = tmp_path / "browser.db"
    shutil.copy(sqlite_template, path)
    yield load_settings(
        app_env="test",
        database_url=f"sqlite+aiosqlite:///{path}",
        access_log=False,
        backup_dir=str(tmp_path / "backups"),
    )


async def _prepare(settings: Settings) -> tuple[World, uuid.UUID]:
    database = Database(settings.database_url)
    try:
        world = await build_world(database, settings)
        message_id = uuid.uuid4()
        async with database.transaction(TenantScope.cross_clinic()) as db:
            db.add(
                OutboxMessage(
                    clinic_id=world.a.clinic.id,
                    id=message_id,
                    kind="email",
                    hook="send_email",
                    payload_encrypted="opaque",
                    status="dead",
                    attempts=8,
                    last_error="provider rejected the message",
                )
            )
        return world, message_id
    finally:
        await database.dispose()


async def test_operator_pages_in_headless_chromium(
    browser: Browser, sqlite_settings: Settings, tmp_path: Path
) -> None:
    world, message_id = await _prepare(sqlite_settings)
    with Server(sqlite_settings) as server:
        # Some API traffic for the figures: two good requests and one refused.
        principal = Principal(world.a.counselor.id, world.a.counselor.role, world.a.clinic.id)
        token, _ = issue_access_token(principal, sqlite_settings.jwt_secret, 300)
        async with httpx.AsyncClient(base_url=server.url) as http:
            for headers in (
                {"Authorization": f"Bearer {token}"},
                {"Authorization": f"Bearer {token}"},
                {},
            ):
                await http.post(
                    "/graphql", json={"query": "query Me { me { id } }"}, headers=headers
                )

        # Not logged in: the page sends the browser to the login form.
        await browser.open(f"{server.url}/system-health", "/login?next=/system-health")
        await browser.fill_and_submit(
            {"email": world.platform_admin.email, "password": "wrong-password"}, "#login-submit"
        )
        await asyncio.sleep(0.3)
        page = await browser.wait_for("/login")
        assert "Invalid email or password." in page

        await browser.fill_and_submit(
            {"email": world.platform_admin.email, "password": PASSWORD}, "#login-submit"
        )
        page = await browser.wait_for("/system-health")
        for text_ in (
            "System health",
            "Average response time",
            "< 200 ms",
            "Error rate",
            "< 0.5%",
            "Database connections",
            "Memory usage",
            "API success rate",
            "> 99%",
        ):
            assert text_ in page, text_
        assert await browser.js("document.getElementById('requests').innerText") == "3"
        assert await browser.js("document.getElementById('rejected').innerText") == "1"
        # The cookie is HttpOnly: the page's scripts cannot read the token.
        assert "santana_ops" not in await browser.js("document.cookie")
        shot = await browser.call("Page.captureScreenshot", format="png")
        (tmp_path / "system-health.png").write_bytes(__import__("base64").b64decode(shot["data"]))

        page = await browser.open(f"{server.url}/production-readiness", "/production-readiness")
        assert "JWT secret" in page and "Set JWT_SECRET to at least 64" in page
        assert "Migrations current" in page and "checks fail" in page

        page = await browser.open(f"{server.url}/admin-debug", "/admin-debug")
        assert "root@platform.test\t1" in page  # the failed login above, by account
        assert "send_email" in page and "provider rejected the message" in page
        await browser.js("document.querySelector('button.retry').click()")
        page = await browser.wait_for("/admin-debug?notice=retried")
        assert "queued again" in page and "No dead letters." in page

    database = Database(sqlite_settings.database_url)
    try:
        async with database.transaction(TenantScope.cross_clinic()) as db:
            row = await db.get(OutboxMessage, (world.a.clinic.id, message_id))
            assert row is not None and row.status == "pending"
    finally:
        await database.dispose()
