"""Discovery through the `santana` entry-point group; broken plugins are reported and skipped."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint

import pytest

from gateway.integrations.errors import ContractError
from gateway.integrations.manager import PluginManager
from gateway.testing import registered
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.plugins import MemoryMail

MODULE = "tests.integrations.broken_plugins"


def ep(name: str, attr: str | None = None) -> EntryPoint:
    return EntryPoint(name=name, value=f"{MODULE}:{attr or name}", group="santana")


BROKEN = {
    "sync_hook": "must be `async def`",
    "unknown_hook": "unknown hook 'send_fax'",
    "no_declaration": "has no `declaration`",
    "wrong_kind": "belongs to kind 'payment'",
    "missing_required": "missing required hooks: send_email",
    "bad_argument": "hook signature does not match",
    "missing_module": "failed to import: ModuleNotFoundError",
    "renamed": "entry point is named 'renamed' but the plugin declares 'fine_mail'",
}


def load(*eps: EntryPoint, **lists: list[str]) -> PluginManager:
    manager = PluginManager()
    manager.load_entry_points(eps, **lists)
    return manager


def test_each_contract_break_is_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    eps = [ep(name) for name in BROKEN if name not in ("missing_module", "renamed")]
    eps += [
        EntryPoint(
            name="missing_module", value="tests.integrations.no_such_module", group="santana"
        ),
        ep("renamed", "fine_mail"),
        ep("fine_mail"),
    ]
    manager = load(*eps)
    assert set(manager.plugins) == {"fine_mail"}  # the good plugin still loads
    reasons = {p.name: p.reason for p in manager.problems}
    assert set(reasons) == set(BROKEN)
    for name, expected in BROKEN.items():
        assert expected in reasons[name], (name, reasons[name])
        assert f"plugin {name} not loaded" in caplog.text


def test_a_broken_plugin_leaves_no_half_registered_hooks() -> None:
    manager = load(ep("bad_argument"), ep("fine_mail"))
    assert manager.implementation("bad_argument", "validate_config") is None
    assert manager.implementation("fine_mail", "send_email") is not None


def test_operator_allow_and_deny_lists() -> None:
    eps = [ep("fine_mail"), ep("sync_hook")]
    allowed = load(*eps, allow=["fine_mail"])
    assert set(allowed.plugins) == {"fine_mail"} and allowed.problems == []
    assert allowed.skipped_by_operator == ["sync_hook"]
    denied = load(*eps, deny=["fine_mail", "sync_hook"])
    assert denied.plugins == {} and denied.problems == []


def test_installed_example_plugin_is_discovered_through_its_entry_point() -> None:
    manager = PluginManager.discover()
    loaded = manager.get("example_mail")
    assert loaded is not None and "santana-example-plugin" in loaded.source
    assert loaded.kind.value == "email"


def test_registered_for_one_test_only() -> None:
    manager = PluginManager()
    with registered(manager, MemoryMail("mail_temp")) as loaded:
        assert manager.get("mail_temp") is loaded
    assert manager.get("mail_temp") is None
    with pytest.raises(ContractError):
        manager.register(object())


async def test_gateway_starts_and_reports_broken_plugins_to_platform_admins(
    settings: object, database: object, world: World
) -> None:
    import httpx

    from gateway.app import create_app
    from gateway.integrations.hub import IntegrationHub

    manager = load(ep("sync_hook"), ep("fine_mail"))
    hub = IntegrationHub.create(settings, database, manager=manager)  # type: ignore[arg-type]
    app = create_app(settings, database, integrations=hub)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        gql = GraphQLClient(http, settings)  # type: ignore[arg-type]
        problems = await gql.data(
            "{ pluginProblems { name reason source } }", user=world.platform_admin
        )
        assert problems["pluginProblems"] == [
            {
                "name": "sync_hook",
                "reason": "hook 'send_email' must be `async def`",
                "source": f"entry point {MODULE}:sync_hook",
            }
        ]
        assert (
            await gql.error_code("{ pluginProblems { name } }", user=world.a.admin) == "FORBIDDEN"
        )
        available = await gql.data("{ availableIntegrations { name } }", user=world.a.admin)
        assert [p["name"] for p in available["availableIntegrations"]] == ["fine_mail"]
        assert (await gql.data("{ me { email } }", user=world.a.counselor))["me"][
            "email"
        ] == "counselor@a.test"
