"""Two clinics, two plugins of one kind, each with its own secrets: neither sees the other's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import Integration
from gateway.integrations.types import EmailMessage, Kind
from gateway.testing import SantanaHarness  # noqa: F401  (the kit is importable from tests)
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import INTEGRATIONS, KEY_A, KEY_B, Plugins, clinic_gid, enable
from tests.integrations.test_failures import send


async def test_each_clinic_uses_its_own_plugin_and_key(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, sender="a@a.test")
    await enable(gql, world.b.admin, "mail_beta", KEY_B, sender="b@b.test")

    await send(hub, world.a.clinic.id, to="one@a.example")
    await send(hub, world.b.clinic.id, to="two@b.example")

    assert [(s.clinic_id, s.api_key, s.message.to) for s in plugins.alpha.sent] == [
        (world.a.clinic.id, KEY_A, ["one@a.example"])
    ]
    assert [(s.clinic_id, s.api_key, s.message.to) for s in plugins.beta.sent] == [
        (world.b.clinic.id, KEY_B, ["two@b.example"])
    ]

    a_view = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    b_view = (await gql.data(INTEGRATIONS, user=world.b.admin))["clinic"]["integrations"]
    assert [i["plugin"] for i in a_view] == ["mail_alpha"]
    assert [i["plugin"] for i in b_view] == ["mail_beta"]
    assert await gql.error_code(
        INTEGRATIONS, {"id": clinic_gid(world, "b")}, user=world.a.admin
    ) in {"FORBIDDEN", "NOT_FOUND"}


async def test_a_clinic_without_the_kind_gets_not_configured(
    gql: GraphQLClient, world: World, hub: IntegrationHub
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    with pytest.raises(Exception) as caught:
        await send(hub, world.b.clinic.id)
    assert getattr(caught.value, "code", None) == "NOT_CONFIGURED"


async def test_the_database_fences_integration_rows_by_clinic(
    gql: GraphQLClient, world: World, database: Database, hub: IntegrationHub
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    await enable(gql, world.b.admin, "mail_beta", KEY_B)
    async with database.session(TenantScope.clinic(world.b.clinic.id)) as db:
        # Even asking for clinic A's row by its clinic id: RLS (PostgreSQL) hides it.
        row = await hub.enabled_row(db, world.a.clinic.id, Kind.EMAIL.value)
        visible = {r.plugin for r in await db.scalars(select(Integration))}
    if database.dialect == "postgresql":
        assert row is None and visible == {"mail_beta"}
    else:
        assert (
            row is not None
        )  # SQLite has no RLS; the service layer's clinic filter is the fence there


async def test_email_arguments_are_typed(hub: IntegrationHub, world: World) -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic refuses an empty recipient list
        EmailMessage(to=[], subject="s", text="t")
