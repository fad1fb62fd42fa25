"""Platform alerts reach people through the `alert` hook of the plugins in ALERT_PLUGINS."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.db.engine import Database
from gateway.integrations import AlertNotice, PluginContext, hookimpl
from gateway.integrations.alerting import AlertForwarder
from gateway.integrations.hub import IntegrationHub
from gateway.ops.alerts import Alert
from gateway.settings import load_settings
from gateway.testing import plugin_manager
from tests.integrations.plugins import MemoryMail

OPS_KEY = "key-ops-alerts-7d6e5f"


class OpsMail(MemoryMail):
    """An email plugin that also mails platform alerts to the on-call address."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.notices: list[tuple[AlertNotice, str, object]] = []

    @hookimpl
    async def alert(self, ctx: PluginContext, notice: AlertNotice) -> None:
        self.notices.append((notice, ctx.config.api_key.get_secret_value(), ctx.clinic_id))


class BrokenPager(MemoryMail):
    @hookimpl
    async def alert(self, ctx: PluginContext, notice: AlertNotice) -> None:
        raise RuntimeError(f"pager refused key {ctx.config.api_key.get_secret_value()}")


class HangingPager(MemoryMail):
    @hookimpl
    async def alert(self, ctx: PluginContext, notice: AlertNotice) -> None:
        await asyncio.sleep(3600)


FIRING = Alert(
    key="error_rate",
    severity="critical",
    priority="P1",
    title="Error rate above 5%",
    message="7.0% of requests failed in the last 5 min",
    value=0.07,
    threshold=0.05,
)


async def test_alerts_go_to_each_listed_plugin_with_platform_config(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One listed plugin raises (quoting its key), one hangs: the working one still gets the
    alert, with the operator's env config, and the failing key never reaches the log."""
    for name, key in (
        ("OPS_MAIL", OPS_KEY),
        ("BROKEN_PAGER", "key-broken-1a2b3c"),
        ("HANGING_PAGER", "key-hanging-4d5e6f"),
    ):
        monkeypatch.setenv(f"{name}_SENDER", "alerts@platform.test")
        monkeypatch.setenv(f"{name}_API_KEY", key)
    ops, broken, hanging = (
        OpsMail("ops_mail"),
        BrokenPager("broken_pager"),
        HangingPager("hanging_pager"),
    )
    settings = load_settings(
        app_env="test",
        alert_plugins="broken_pager, hanging_pager, ops_mail, not_installed",
        integration_timeout_seconds=0.2,
    )
    hub = IntegrationHub.create(
        settings, Database("sqlite+aiosqlite://"), manager=plugin_manager(ops, broken, hanging)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="santana.integrations.alerting"):
            await asyncio.wait_for(AlertForwarder(hub)(FIRING), 2)
    finally:
        await hub.close()
    [(notice, key, clinic)] = ops.notices
    assert (notice.key, notice.priority, notice.state, notice.value) == (
        "error_rate",
        "P1",
        "firing",
        0.07,
    )
    assert key == OPS_KEY and clinic is None
    logged = caplog.text
    assert "broken_pager failed" in logged and "hanging_pager failed" in logged
    assert "not_installed" in logged
    assert "key-broken-1a2b3c" not in logged


async def test_plugins_not_listed_get_no_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_MAIL_SENDER", "alerts@platform.test")
    monkeypatch.setenv("OPS_MAIL_API_KEY", OPS_KEY)
    ops = OpsMail("ops_mail")
    hub = IntegrationHub.create(
        load_settings(app_env="test"), Database("sqlite+aiosqlite://"), manager=plugin_manager(ops)
    )
    try:
        await AlertForwarder(hub)(FIRING)
    finally:
        await hub.close()
    assert ops.notices == []
