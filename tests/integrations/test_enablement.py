"""Per-clinic enablement through GraphQL: enable, update, disable, test, permissions, audit."""

from __future__ import annotations

from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import (
    DISABLE,
    ENABLE,
    INTEGRATIONS,
    KEY_A,
    TEST,
    UPDATE,
    Plugins,
    clinic_gid,
    enable,
)

AVAILABLE = "{ availableIntegrations { name kind label configSchema secretFields } }"


async def test_available_integrations_list_installed_plugins_with_their_schema(
    gql: GraphQLClient, world: World
) -> None:
    data = await gql.data(AVAILABLE, user=world.a.admin)
    by_name = {p["name"]: p for p in data["availableIntegrations"]}
    assert {"mail_alpha", "mail_beta", "pay_memory"} <= set(by_name)
    alpha = by_name["mail_alpha"]
    assert alpha["kind"] == "EMAIL"
    assert alpha["secretFields"] == ["api_key", "webhook_secret"]
    props = alpha["configSchema"]["properties"]
    assert props["api_key"]["secret"] is True and props["api_key"]["writeOnly"] is True
    assert "secret" not in props["sender"]


async def test_enable_then_list_shows_status_and_masked_secrets(
    gql: GraphQLClient, world: World
) -> None:
    enabled = (await enable(gql, world.a.admin, "mail_alpha", KEY_A))["enableIntegration"]
    assert enabled["enabled"] is True and enabled["status"] == "active"
    assert enabled["config"] == {"sender": "clinic@example.test"}
    secrets = {s["name"]: s for s in enabled["secrets"]}
    assert secrets["api_key"] == {
        "name": "api_key",
        "isSet": True,
        "masked": "********",
        "source": "clinic",
    }
    assert secrets["webhook_secret"]["isSet"] is False

    listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    assert [(i["plugin"], i["enabled"], i["circuit"]["state"]) for i in listed] == [
        ("mail_alpha", True, "CLOSED")
    ]


async def test_refused_credentials_store_nothing(gql: GraphQLClient, world: World) -> None:
    code = await gql.error_code(
        ENABLE,
        {
            "plugin": "mail_alpha",
            "config": {"sender": "x@y.test"},
            "secrets": {"api_key": "wrong-key-123"},
        },
        user=world.a.admin,
    )
    assert code == "NOT_CONFIGURED"
    listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    assert listed == []


async def test_config_errors_name_the_field(gql: GraphQLClient, world: World) -> None:
    body = await gql.execute(
        ENABLE,
        {"plugin": "mail_alpha", "config": {}, "secrets": {"api_key": KEY_A}},
        user=world.a.admin,
    )
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert body["errors"][0]["extensions"]["field"] == "sender"
    body = await gql.execute(
        ENABLE,
        {"plugin": "mail_alpha", "config": {"api_key": KEY_A, "sender": "a@b.test"}},
        user=world.a.admin,
    )
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert KEY_A not in str(body)
    assert (
        await gql.error_code(ENABLE, {"plugin": "no_such_plugin"}, user=world.a.admin)
        == "NOT_FOUND"
    )


async def test_one_enabled_plugin_per_kind(gql: GraphQLClient, world: World) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    body = await gql.execute(
        ENABLE,
        {"plugin": "mail_beta", "config": {"sender": "a@b.test"}, "secrets": {"api_key": KEY_A}},
        user=world.a.admin,
    )
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert body["errors"][0]["extensions"]["enabled"] == "mail_alpha"
    # Another kind is fine alongside.
    pay = await gql.data(
        ENABLE,
        {
            "plugin": "pay_memory",
            "config": {"account": "acct_1"},
            "secrets": {"secret_key": "sk-test-123456"},
        },
        user=world.a.admin,
    )
    assert pay["enableIntegration"]["kind"] == "PAYMENT"
    # After disabling alpha, beta may be enabled.
    await gql.data(DISABLE, {"plugin": "mail_alpha"}, user=world.a.admin)
    await enable(gql, world.a.admin, "mail_beta", KEY_A)
    listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    assert {(i["plugin"], i["enabled"]) for i in listed} == {
        ("mail_alpha", False),
        ("mail_beta", True),
        ("pay_memory", True),
    }


async def test_update_changes_fields_and_keeps_untouched_secrets(
    gql: GraphQLClient, world: World, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    updated = (
        await gql.data(
            UPDATE, {"plugin": "mail_alpha", "config": {"sender": "new@a.test"}}, user=world.a.admin
        )
    )["updateIntegration"]
    assert updated["config"] == {"sender": "new@a.test"}
    assert {s["name"]: s["isSet"] for s in updated["secrets"]} == {
        "api_key": True,
        "webhook_secret": False,
    }
    # A replacement key is validated with the provider before it is stored.
    assert (
        await gql.error_code(
            UPDATE, {"plugin": "mail_alpha", "secrets": {"api_key": "bad"}}, user=world.a.admin
        )
        == "NOT_CONFIGURED"
    )
    await gql.data(
        UPDATE,
        {"plugin": "mail_alpha", "secrets": {"api_key": "key-rotated-000111"}},
        user=world.a.admin,
    )
    plugins.alpha.calls = 0
    result = (await gql.data(TEST, {"plugin": "mail_alpha"}, user=world.a.admin))["testIntegration"]
    assert result["ok"] is True and plugins.alpha.calls == 2  # validate + health


async def test_disable_and_reenable_keeps_settings(gql: GraphQLClient, world: World) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    disabled = (await gql.data(DISABLE, {"plugin": "mail_alpha"}, user=world.a.admin))[
        "disableIntegration"
    ]
    assert disabled == {"plugin": "mail_alpha", "enabled": False, "status": "disabled"}
    again = (await gql.data(ENABLE, {"plugin": "mail_alpha"}, user=world.a.admin))[
        "enableIntegration"
    ]
    assert again["enabled"] is True and again["config"] == {"sender": "clinic@example.test"}


async def test_test_integration_reports_failure_without_raising(
    gql: GraphQLClient, world: World, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    plugins.alpha.down = True
    result = (await gql.data(TEST, {"plugin": "mail_alpha"}, user=world.a.admin))["testIntegration"]
    assert (result["ok"], result["code"]) == (False, "PROVIDER_UNAVAILABLE")
    assert result["integration"]["status"] == "error"
    assert result["integration"]["lastError"] == "provider is down"
    plugins.alpha.down = False
    result = (await gql.data(TEST, {"plugin": "mail_alpha"}, user=world.a.admin))["testIntegration"]
    assert result["ok"] is True and result["message"] == "all good"
    assert (
        result["integration"]["status"] == "active" and result["integration"]["lastError"] is None
    )


async def test_counselors_and_patients_cannot_manage_integrations(
    gql: GraphQLClient, world: World
) -> None:
    args = {"plugin": "mail_alpha", "config": {"sender": "a@b.test"}, "secrets": {"api_key": KEY_A}}
    for user in (world.a.counselor, world.a.patient_user):
        assert await gql.error_code(ENABLE, args, user=user) == "FORBIDDEN"
        assert await gql.error_code(AVAILABLE, user=user) == "FORBIDDEN"
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    assert await gql.error_code(INTEGRATIONS, user=world.a.counselor) == "FORBIDDEN"
    assert (
        await gql.error_code(DISABLE, {"plugin": "mail_alpha"}, user=world.a.counselor)
        == "FORBIDDEN"
    )


async def test_clinic_b_admin_cannot_touch_clinic_a(gql: GraphQLClient, world: World) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    a = clinic_gid(world, "a")
    for query, variables in (
        (DISABLE, {"plugin": "mail_alpha", "clinicId": a}),
        (UPDATE, {"plugin": "mail_alpha", "clinicId": a, "config": {"sender": "evil@b.test"}}),
        (TEST, {"plugin": "mail_alpha", "clinicId": a}),
        (
            ENABLE,
            {
                "plugin": "pay_memory",
                "clinicId": a,
                "config": {"account": "x"},
                "secrets": {"secret_key": "sk-1234567"},
            },
        ),
    ):
        assert await gql.error_code(query, variables, user=world.b.admin) == "FORBIDDEN"
    assert await gql.error_code(INTEGRATIONS, {"id": a}, user=world.b.admin) in {
        "FORBIDDEN",
        "NOT_FOUND",
    }
    listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    assert [(i["plugin"], i["enabled"], i["config"]) for i in listed] == [
        ("mail_alpha", True, {"sender": "clinic@example.test"})
    ]


async def test_platform_admin_manages_any_clinic_explicitly(
    gql: GraphQLClient, world: World
) -> None:
    assert (
        await gql.error_code(ENABLE, {"plugin": "mail_alpha"}, user=world.platform_admin)
        == "VALIDATION"
    )
    b = clinic_gid(world, "b")
    data = await gql.data(
        ENABLE,
        {
            "plugin": "mail_beta",
            "clinicId": b,
            "config": {"sender": "ops@b.test"},
            "secrets": {"api_key": KEY_A},
        },
        user=world.platform_admin,
    )
    assert data["enableIntegration"]["plugin"] == "mail_beta"
    listed = (await gql.data(INTEGRATIONS, user=world.b.admin))["clinic"]["integrations"]
    assert [i["plugin"] for i in listed] == ["mail_beta"]


async def test_enable_reconfigure_disable_test_are_audited(
    gql: GraphQLClient, world: World, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    await gql.data(
        UPDATE,
        {"plugin": "mail_alpha", "secrets": {"api_key": "key-two-3344556"}},
        user=world.a.admin,
    )
    await gql.data(TEST, {"plugin": "mail_alpha"}, user=world.a.admin)
    await gql.data(DISABLE, {"plugin": "mail_alpha"}, user=world.a.admin)
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        events = list(
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("integration.%"))
                .order_by(AuditEvent.created_at)
            )
        )
    assert [e.action for e in events] == [
        "integration.enabled",
        "integration.reconfigured",
        "integration.tested",
        "integration.disabled",
    ]
    assert all(
        e.actor_user_id == world.a.admin.id and e.clinic_id == world.a.clinic.id for e in events
    )
    assert events[1].details["secret_fields"] == ["api_key"]
    assert "key-" not in str([e.details for e in events])
