"""Secrets: encrypted at rest, write-only, never in errors or logs; rotation; platform defaults."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.integrations.config import PlatformDefaults
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import Integration
from gateway.integrations.rotation import rotate_keys
from gateway.settings import Settings
from gateway.testing import plugin_manager
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import (
    ENABLE,
    HOOK_SECRET_A,
    INTEGRATIONS,
    KEY_A,
    TEST,
    UPDATE,
    Plugins,
    enable,
)
from tests.integrations.plugins import MemoryMail, RaisingMail
from tests.integrations.test_failures import failing_send


async def stored_row(database: Database, world: World) -> Integration:
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        row = await db.scalar(select(Integration))
    assert row is not None
    return row


async def test_secrets_never_appear_in_responses_errors_or_logs(
    gql: GraphQLClient,
    world: World,
    hub: IntegrationHub,
    plugins: Plugins,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = [
        str(await enable(gql, world.a.admin, "mail_raising", KEY_A, webhook_secret=HOOK_SECRET_A))
    ]
    seen.append(str(await gql.execute(INTEGRATIONS, user=world.a.admin)))
    # A failing call whose exception quotes the key.
    error = await failing_send(hub, world.a.clinic.id)
    seen.append(f"{error.message} {error.extensions}")
    # A refused replacement key, and a secret sent in the wrong field.
    seen.append(
        str(
            await gql.execute(
                UPDATE,
                {"plugin": "mail_raising", "secrets": {"api_key": "bad-" + KEY_A}},
                user=world.a.admin,
            )
        )
    )
    seen.append(
        str(
            await gql.execute(
                UPDATE, {"plugin": "mail_raising", "config": {"api_key": KEY_A}}, user=world.a.admin
            )
        )
    )
    plugins.raising.down = True
    seen.append(str(await gql.execute(TEST, {"plugin": "mail_raising"}, user=world.a.admin)))
    text_seen = "\n".join(seen)
    assert "********" in text_seen and "RuntimeError" in text_seen
    for secret in (KEY_A, HOOK_SECRET_A):
        assert secret not in text_seen
        assert secret not in caplog.text
    assert "[redacted]" in caplog.text  # the plugin's own message was logged, scrubbed


async def test_plugin_logger_redacts_the_clinics_secrets(
    world: World, hub: IntegrationHub, gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.integrations.dispatch import Target, invoke

    class Chatty(MemoryMail):
        from gateway.integrations import hookimpl

        @hookimpl
        async def health_check(self, ctx):  # type: ignore[no-untyped-def]
            ctx.log.info("using key %s", ctx.config.api_key.get_secret_value())
            return "ok"

    chatty = Chatty("mail_chatty")
    hub.manager.register(chatty)
    loaded = hub.manager.get("mail_chatty")
    assert loaded is not None
    caplog.set_level(logging.INFO)
    await invoke(
        hub,
        Target(world.a.clinic.id, loaded, {"sender": "a@b.test"}, {"api_key": KEY_A}),
        "health_check",
        {},
    )
    assert "using key [redacted]" in caplog.text and KEY_A not in caplog.text


async def test_secrets_are_encrypted_at_rest(
    gql: GraphQLClient, world: World, owner_url: str, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, webhook_secret=HOOK_SECRET_A)
    owner = Database(owner_url)
    try:
        async with owner.session(TenantScope.cross_clinic()) as db:
            raw = (
                await db.execute(text("SELECT config, secrets_encrypted FROM integrations"))
            ).one()
    finally:
        await owner.dispose()
    assert KEY_A not in str(raw) and HOOK_SECRET_A not in str(raw)
    assert "api_key" not in str(raw[0])


async def test_rotate_keys_reencrypts_under_the_new_key(
    gql: GraphQLClient,
    world: World,
    integration_settings: Settings,
    database: Database,
    plugins: Plugins,
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    old_key = integration_settings.encryption_keys[0]
    new_key = DataCipher.generate_key()
    before = (await stored_row(database, world)).secrets_encrypted

    report = await rotate_keys(database, DataCipher([new_key, old_key]), batch_size=1)
    assert report.rotated["integrations.secrets_encrypted"] == 1
    assert report.rotated["counseling_sessions.notes_encrypted"] == 2  # one note per clinic
    after = await stored_row(database, world)
    assert after.secrets_encrypted != before and after.secrets_encrypted is not None
    assert '"api_key"' in DataCipher([new_key]).decrypt(after.secrets_encrypted)
    with pytest.raises(ValueError):
        DataCipher([old_key]).decrypt(after.secrets_encrypted)

    # A gateway holding only the new key keeps working with the rotated secrets.
    only_new = integration_settings.model_copy(update={"data_encryption_keys": new_key})
    only_new.__dict__.pop("encryption_keys", None)
    hub = IntegrationHub.create(only_new, database, manager=plugin_manager(plugins.alpha))
    from tests.integrations.test_failures import send

    await send(hub, world.a.clinic.id)
    assert plugins.alpha.sent[-1].api_key == KEY_A
    await hub.close()


async def test_platform_defaults_fill_what_a_clinic_leaves_out(
    world: World,
    integration_settings: Settings,
    database: Database,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    import httpx

    from gateway.app import create_app

    defaults_file = Path(str(tmp_path)) / "defaults.toml"
    defaults_file.write_text('[mail_alpha]\nsender = "noreply@platform.test"\n')
    monkeypatch.setenv("MAIL_ALPHA_API_KEY", "key-platform-wide-7788")  # EPIC_CLIENT_ID-style
    settings = integration_settings.model_copy(
        update={"integration_defaults_file": str(defaults_file)}
    )
    alpha = MemoryMail("mail_alpha")
    hub = IntegrationHub.create(settings, database, manager=plugin_manager(alpha))
    app = create_app(settings, database, integrations=hub)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        from tests.conftest import GraphQLClient as Client

        gql = Client(http, settings)
        enabled = (await gql.data(ENABLE, {"plugin": "mail_alpha"}, user=world.a.admin))[
            "enableIntegration"
        ]
        assert enabled["config"] == {}  # nothing copied into the clinic's row
        key = next(s for s in enabled["secrets"] if s["name"] == "api_key")
        assert key == {
            "name": "api_key",
            "isSet": True,
            "masked": "********",
            "source": "platform",
        }
        listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"][0]
        assert listed["platformDefaults"] == ["api_key", "sender"]
        from tests.integrations.test_failures import send

        await send(hub, world.a.clinic.id)
        assert (alpha.sent[-1].api_key, alpha.sent[-1].message.to) == (
            "key-platform-wide-7788",
            ["p@example.test"],
        )
        # A clinic's own value wins over the platform's.
        await gql.data(
            UPDATE, {"plugin": "mail_alpha", "secrets": {"api_key": KEY_A}}, user=world.a.admin
        )
        await send(hub, world.a.clinic.id)
        assert alpha.sent[-1].api_key == KEY_A
        assert "key-platform-wide-7788" not in str(listed)


def test_platform_defaults_read_the_environment_prefix() -> None:
    plugin = RaisingMail("mail_raising")
    defaults = PlatformDefaults.load(
        [plugin.declaration],
        environ={"MAIL_RAISING_SENDER": "ops@x.test", "MAIL_RAISING_UNKNOWN": "ignored"},
    )
    assert defaults.for_plugin("mail_raising") == {"sender": "ops@x.test"}
