"""Testing kit for plugin authors (the gateway's own tests use it too).

    from gateway.testing import santana_app, PluginContractTests

- `santana_app(tmp_path, my_plugin)`: a real gateway on a migrated SQLite file, with
  only the plugins you pass, a clinic, its admin and a platform admin, and an
  HTTP client; helpers to enable a plugin, dispatch a hook, post a webhook and
  run the outbox worker.
- `registered(manager, plugin)`: register a plugin for one test, then remove it.
- `PluginContractTests`: subclass it in your test module, set `plugin`, `config`,
  `secrets` (and optionally `bad_secrets`, `http_transport`, `sign_webhook`):
  pytest then runs the contract every plugin must pass.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.engine import Database
from gateway.db.migrate import upgrade
from gateway.db.models import Clinic, Role, User
from gateway.db.tenancy import TenantScope
from gateway.integrations.dispatch import CallInfo, call
from gateway.integrations.hookspecs import ENTRY_POINT_GROUP, HOOKS
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.manager import LoadedPlugin, PluginManager
from gateway.integrations.models import WebhookReceipt
from gateway.integrations.outbox import OutboxWorker, RunStats, enqueue
from gateway.integrations.types import EmailMessage, Kind, PatientQuery, PaymentRequest
from gateway.settings import Settings, load_settings

_template: Path | None = None
UNUSABLE_PASSWORD = "!"  # noqa: S105  # tokens are minted directly; nobody logs in


def plugin_manager(*plugins: Any, entry_points: bool = False) -> PluginManager:
    """A manager holding exactly `plugins` (plus installed entry points if asked)."""
    manager = PluginManager.discover() if entry_points else PluginManager()
    for plugin in plugins:
        manager.register(plugin)
    return manager


@contextmanager
def registered(manager: PluginManager, plugin: Any) -> Iterator[LoadedPlugin]:
    """Register `plugin` for the duration of a `with` block (one test)."""
    loaded = manager.register(plugin)
    try:
        yield loaded
    finally:
        manager.unregister(loaded.name)


async def migrated_sqlite(directory: Path) -> str:
    """A migrated SQLite database in `directory` (copied from a per-process template)."""
    global _template
    if _template is None:
        path = Path(tempfile.mkdtemp(prefix="santana-template-")) / "template.db"
        await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
        _template = path
    target = directory / "santana.db"
    shutil.copy(_template, target)
    return f"sqlite+aiosqlite:///{target}"


@dataclass
class SantanaHarness:
    settings: Settings
    database: Database
    hub: IntegrationHub
    http: httpx.AsyncClient
    clinic: Clinic
    admin: User
    platform_admin: User

    def token_for(self, user: User) -> str:
        principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
        return issue_access_token(principal, self.settings.jwt_secret, 300)[0]

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, user: User | None = None
    ) -> dict[str, Any]:
        """The response body of one GraphQL operation, as `user` (default: the clinic admin)."""
        headers = {"Authorization": f"Bearer {self.token_for(user or self.admin)}"}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        body = await self.graphql(query, variables, **kw)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def enable(
        self,
        plugin: str,
        config: dict[str, Any],
        secrets: dict[str, Any],
        clinic: Clinic | None = None,
    ) -> dict[str, Any]:
        """enableIntegration for the clinic (or `clinic`, as platform admin); returns the body."""
        variables: dict[str, Any] = {"plugin": plugin, "config": config, "secrets": secrets}
        user = self.admin
        if clinic is not None:
            from schema.ids import to_global_id

            variables["clinicId"] = to_global_id("Clinic", clinic.id)
            user = self.platform_admin
        return await self.graphql(ENABLE, variables, user=user)

    async def dispatch(
        self, kind: Kind | str, hook: str, clinic: Clinic | None = None, **args: Any
    ) -> Any:
        clinic_id = (clinic or self.clinic).id
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return await call(
                self.hub,
                db,
                clinic_id,
                Kind(kind),
                hook,
                args,
                CallInfo(actor_user_id=self.admin.id),
            )

    async def enqueue(self, kind: Kind | str, hook: str, **args: Any) -> uuid.UUID:
        async with self.database.transaction(TenantScope.clinic(self.clinic.id)) as db:
            return enqueue(db, self.hub.cipher, self.clinic.id, kind, hook, args).id

    async def deliver_outbox(self) -> RunStats:
        return await OutboxWorker(self.hub).run_once()

    async def post_webhook(
        self, plugin: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        return await self.http.post(
            f"/webhooks/{self.clinic.slug}/{plugin}", content=body, headers=headers
        )

    async def webhook_receipts(self) -> int:
        async with self.database.session(TenantScope.clinic(self.clinic.id)) as db:
            return int(await db.scalar(select(func.count()).select_from(WebhookReceipt)) or 0)


@asynccontextmanager
async def santana_app(
    directory: Path,
    *plugins: Any,
    http_transport: httpx.AsyncBaseTransport | None = None,
    entry_points: bool = False,
    **settings: Any,
) -> AsyncIterator[SantanaHarness]:
    """A running gateway on SQLite with only `plugins` installed (see module docstring)."""
    url = await migrated_sqlite(directory)
    config = load_settings(
        **{"app_env": "test", "database_url": url, "outbox_in_process": False, **settings}
    )
    database = Database(config.database_url)
    hub = IntegrationHub.create(
        config,
        database,
        manager=plugin_manager(*plugins, entry_points=entry_points),
        http_transport=http_transport,
    )
    async with database.transaction(TenantScope.cross_clinic()) as db:
        clinic = Clinic(
            name="Contract Clinic", slug="contract-clinic", timezone="UTC", currency="USD"
        )
        db.add(clinic)
        await db.flush()
        admin = User(
            email="admin@contract.test",
            full_name="Clinic Admin",
            role=Role.CLINIC_ADMIN,
            password_hash=UNUSABLE_PASSWORD,
            clinic_id=clinic.id,
        )
        root = User(
            email="root@contract.test",
            full_name="Platform Admin",
            role=Role.PLATFORM_ADMIN,
            password_hash=UNUSABLE_PASSWORD,
            clinic_id=None,
        )
        db.add_all([admin, root])
    app = create_app(config, database, integrations=hub)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield SantanaHarness(config, database, hub, http, clinic, admin, root)


ENABLE = """
mutation($plugin: String!, $config: JSON, $secrets: JSON, $clinicId: ID) {
  enableIntegration(plugin: $plugin, config: $config, secrets: $secrets, clinicId: $clinicId) {
    plugin enabled status secrets { name isSet masked } circuit { state }
  }
}"""
TEST = "mutation($plugin: String!) { testIntegration(plugin: $plugin) { ok code message } }"
LIST = (
    "{ clinic { integrations { plugin enabled status config lastError "
    "secrets { name isSet masked } } } }"
)
AVAILABLE = "{ availableIntegrations { name kind configSchema secretFields } }"

DEFAULT_CALLS: dict[Kind, dict[str, dict[str, Any]]] = {
    Kind.EMAIL: {
        "send_email": {
            "message": EmailMessage(to=["patient@example.test"], subject="Contract", text="Hi")
        }
    },
    Kind.PAYMENT: {
        "create_payment": {
            "payment": PaymentRequest(
                amount=1000, currency="USD", description="Contract", reference="contract-1"
            )
        }
    },
    Kind.EMR: {"search_patients": {"query": PatientQuery(family="Contract", limit=20)}},
}


class PluginContractTests:
    """The contract every plugin passes. Subclass as `TestMyPluginContract`, fill the attributes."""

    plugin: ClassVar[Any]
    config: ClassVar[dict[str, Any]] = {}
    secrets: ClassVar[dict[str, str]] = {}
    bad_secrets: ClassVar[dict[str, str] | None] = None  # credentials the provider refuses
    sample_calls: ClassVar[dict[str, dict[str, Any]] | None] = (
        None  # hook -> args; default per kind
    )
    check_entry_point: ClassVar[bool] = True

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        """Override to point the plugin's HTTP calls at a fake of your provider."""
        return None

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        """Override if the plugin verifies webhooks: headers that sign `body` with `secrets`."""
        raise NotImplementedError

    def webhook_body(self, event_id: str) -> bytes:
        """Override with a body your provider would send, carrying `event_id`."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return str(self.plugin.declaration.name)

    @pytest_asyncio.fixture
    async def santana(self, tmp_path: Path) -> AsyncIterator[SantanaHarness]:
        async with santana_app(
            tmp_path, self.plugin, http_transport=self.http_transport()
        ) as harness:
            yield harness

    def test_contract_declaration_and_hooks(self) -> None:
        loaded = plugin_manager(self.plugin).get(self.name)
        assert loaded is not None
        kind_hooks = {h for h, info in HOOKS.items() if info.kind is loaded.kind and info.required}
        assert kind_hooks <= loaded.hooks

    def test_contract_discovered_through_entry_point(self) -> None:
        if not self.check_entry_point:
            pytest.skip("check_entry_point is off")
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        assert self.name in found, (
            f"no entry point {self.name!r} in group {ENTRY_POINT_GROUP!r}; is it installed?"
        )
        assert found[self.name].load() is self.plugin

    def test_contract_secret_fields_are_marked(self) -> None:
        declaration = self.plugin.declaration
        assert set(self.secrets) <= set(declaration.secret_fields()), (
            "put secret values only in secret fields"
        )
        assert not set(self.config) & set(declaration.secret_fields())

    @pytest.mark.asyncio
    async def test_contract_enable_validate_and_health(self, santana: SantanaHarness) -> None:
        body = await santana.enable(self.name, self.config, self.secrets)
        assert not body.get("errors"), body
        assert body["data"]["enableIntegration"]["enabled"] is True
        result = (await santana.data(TEST, {"plugin": self.name}))["testIntegration"]
        assert result["ok"] is True, result

    @pytest.mark.asyncio
    async def test_contract_secrets_never_shown_or_logged(
        self, santana: SantanaHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level("DEBUG")
        await santana.enable(self.name, self.config, self.secrets)
        text = str(await santana.graphql(LIST)) + str(await santana.graphql(AVAILABLE))
        if self.bad_secrets:
            text += str(
                await santana.graphql(
                    "mutation($p: String!, $s: JSON) "
                    "{ updateIntegration(plugin: $p, secrets: $s) { plugin } }",
                    {"p": self.name, "s": self.bad_secrets},
                )
            )
        for value in [*self.secrets.values(), *(self.bad_secrets or {}).values()]:
            assert value not in text, "a secret value reached the API"
            assert value not in caplog.text, "a secret value reached the logs"

    @pytest.mark.asyncio
    async def test_contract_bad_credentials_are_a_typed_error(
        self, santana: SantanaHarness
    ) -> None:
        if self.bad_secrets is None:
            pytest.skip("set bad_secrets to check how refused credentials are reported")
        body = await santana.enable(self.name, self.config, {**self.secrets, **self.bad_secrets})
        assert body.get("errors"), "enabling with refused credentials must fail"
        assert body["errors"][0]["extensions"]["code"] in {"NOT_CONFIGURED", "PROVIDER_REJECTED"}
        listed = (await santana.data(LIST))["clinic"]["integrations"]
        assert listed == [], "a refused configuration must not be stored"

    @pytest.mark.asyncio
    async def test_contract_operations_of_its_kind(self, santana: SantanaHarness) -> None:
        await santana.enable(self.name, self.config, self.secrets)
        calls = self.sample_calls or DEFAULT_CALLS[self.plugin.declaration.kind]
        for hook, args in calls.items():
            result = await santana.dispatch(self.plugin.declaration.kind, hook, **args)
            expected = HOOKS[hook].returns
            assert expected is None or isinstance(result, expected)

    @pytest.mark.asyncio
    async def test_contract_outbox_delivery(self, santana: SantanaHarness) -> None:
        await santana.enable(self.name, self.config, self.secrets)
        calls = self.sample_calls or DEFAULT_CALLS[self.plugin.declaration.kind]
        hook, args = next(iter(calls.items()))
        await santana.enqueue(self.plugin.declaration.kind, hook, **args)
        stats = await santana.deliver_outbox()
        assert (stats.delivered, stats.retried, stats.dead) == (1, 0, 0)

    @pytest.mark.asyncio
    async def test_contract_webhooks_verified_and_deduplicated(
        self, santana: SantanaHarness
    ) -> None:
        if "verify_webhook" not in plugin_manager(self.plugin).get(self.name).hooks:  # type: ignore[union-attr]
            pytest.skip("the plugin receives no webhooks")
        await santana.enable(self.name, self.config, self.secrets)
        body = self.webhook_body("evt_contract_1")
        forged = await santana.post_webhook(self.name, body, {"content-type": "application/json"})
        assert forged.status_code == 400 and await santana.webhook_receipts() == 0
        signed = self.sign_webhook(body)
        first = await santana.post_webhook(self.name, body, signed)
        again = await santana.post_webhook(self.name, body, signed)
        assert (first.status_code, first.json()["result"]) == (200, "processed")
        assert (again.status_code, again.json()["result"]) == (200, "duplicate")
        assert await santana.webhook_receipts() == 1
