"""A plugin that raises, hangs or is misconfigured: typed error, open circuit, rest still works."""

from __future__ import annotations

import uuid

import pytest

from gateway.db.tenancy import TenantScope
from gateway.integrations.dispatch import call
from gateway.integrations.errors import IntegrationError
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.types import EmailMessage, Kind, PaymentRequest
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import (
    CIRCUIT_FAILURES,
    INTEGRATIONS,
    KEY_A,
    KEY_B,
    TEST,
    Plugins,
    enable,
)


async def send(hub: IntegrationHub, clinic_id: uuid.UUID, to: str = "p@example.test") -> object:
    async with hub.database.session(TenantScope.clinic(clinic_id)) as db:
        return await call(
            hub,
            db,
            clinic_id,
            Kind.EMAIL,
            "send_email",
            {"message": EmailMessage(to=[to], subject="Reminder", text="See you tomorrow")},
        )


async def failing_send(hub: IntegrationHub, clinic_id: uuid.UUID) -> IntegrationError:
    with pytest.raises(IntegrationError) as caught:
        await send(hub, clinic_id)
    return caught.value


async def assert_rest_of_api_works(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    me = await gql.data("{ me { email } }", user=world.a.counselor)
    assert me["me"]["email"] == "counselor@a.test"
    patients = await gql.data("{ patients { nodes { lastName } } }", user=world.a.admin)
    assert len(patients["patients"]["nodes"]) == 3
    # Clinic B's email, and clinic A's other kinds, still go out.
    await send(hub, world.b.clinic.id)
    assert plugins.beta.sent[-1].clinic_id == world.b.clinic.id
    async with hub.database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        paid = await call(
            hub,
            db,
            world.a.clinic.id,
            Kind.PAYMENT,
            "create_payment",
            {
                "payment": PaymentRequest(
                    amount=500, currency="USD", description="x", reference="r1"
                )
            },
        )
    assert paid.provider_payment_id == "pay-r1"


async def circuit_of(gql: GraphQLClient, world: World, plugin: str) -> dict[str, object]:
    listed = (await gql.data(INTEGRATIONS, user=world.a.admin))["clinic"]["integrations"]
    return next(i for i in listed if i["plugin"] == plugin)


@pytest.fixture
async def clinics_set_up(gql: GraphQLClient, world: World) -> None:
    await enable(gql, world.b.admin, "mail_beta", KEY_B)
    await gql.data(
        'mutation { enableIntegration(plugin: "pay_memory", config: {account: "a"}, '
        'secrets: {secret_key: "sk-12345678"}) { enabled } }',
        user=world.a.admin,
    )


@pytest.mark.usefixtures("clinics_set_up")
async def test_a_raising_plugin(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_raising", KEY_A)
    plugins.raising.calls = 0
    errors = [await failing_send(hub, world.a.clinic.id) for _ in range(CIRCUIT_FAILURES)]
    assert {e.code for e in errors} == {"PROVIDER_UNAVAILABLE"}
    assert "RuntimeError" in errors[0].message and KEY_A not in errors[0].message

    short_circuited = await failing_send(hub, world.a.clinic.id)
    assert (
        short_circuited.code == "PROVIDER_UNAVAILABLE"
        and short_circuited.extensions["circuit"] == "open"
    )
    assert plugins.raising.calls == CIRCUIT_FAILURES  # the open circuit did not call the plugin
    entry = await circuit_of(gql, world, "mail_raising")
    assert (
        entry["circuit"]["state"] == "OPEN"
        and entry["circuit"]["lastErrorCode"] == "PROVIDER_UNAVAILABLE"
    )
    assert entry["circuit"]["consecutiveFailures"] == CIRCUIT_FAILURES
    await assert_rest_of_api_works(gql, world, hub, plugins)


@pytest.mark.usefixtures("clinics_set_up")
async def test_a_hanging_plugin(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_hanging", KEY_A)
    errors = [await failing_send(hub, world.a.clinic.id) for _ in range(CIRCUIT_FAILURES)]
    assert {e.code for e in errors} == {"TIMEOUT"}
    assert (await failing_send(hub, world.a.clinic.id)).extensions["circuit"] == "open"
    assert (await circuit_of(gql, world, "mail_hanging"))["circuit"]["state"] == "OPEN"
    await assert_rest_of_api_works(gql, world, hub, plugins)


@pytest.mark.usefixtures("clinics_set_up")
async def test_a_misconfigured_plugin(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    plugins.alpha.revoked = True  # the provider stops accepting the clinic's key
    errors = [await failing_send(hub, world.a.clinic.id) for _ in range(CIRCUIT_FAILURES)]
    assert {e.code for e in errors} == {"NOT_CONFIGURED"}
    assert (await failing_send(hub, world.a.clinic.id)).extensions["circuit"] == "open"
    entry = await circuit_of(gql, world, "mail_alpha")
    assert (
        entry["circuit"]["state"] == "OPEN"
        and entry["lastError"] == "The provider refused the API key."
    )
    await assert_rest_of_api_works(gql, world, hub, plugins)

    # The admin fixes it and tests: the probe runs despite the open circuit and closes it.
    plugins.alpha.revoked = False
    result = (await gql.data(TEST, {"plugin": "mail_alpha"}, user=world.a.admin))["testIntegration"]
    assert result["ok"] is True and result["integration"]["circuit"]["state"] == "CLOSED"
    await send(hub, world.a.clinic.id)
    assert plugins.alpha.sent[-1].clinic_id == world.a.clinic.id


async def test_stored_config_that_no_longer_validates_is_not_configured(
    gql: GraphQLClient, world: World, hub: IntegrationHub
) -> None:
    from sqlalchemy import update

    from gateway.integrations.models import Integration

    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    async with hub.database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        await db.execute(
            update(Integration).values(config={})
        )  # e.g. a plugin upgrade added a required field
    error = await failing_send(hub, world.a.clinic.id)
    assert error.code == "NOT_CONFIGURED" and error.extensions["field"] == "sender"


async def test_rejected_requests_do_not_open_the_circuit(
    gql: GraphQLClient, world: World, hub: IntegrationHub
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    for _ in range(CIRCUIT_FAILURES + 1):
        with pytest.raises(IntegrationError) as caught:
            await send(hub, world.a.clinic.id, to="reject@example.test")
        assert caught.value.code == "PROVIDER_REJECTED"
    assert (await circuit_of(gql, world, "mail_alpha"))["circuit"]["state"] == "CLOSED"


async def test_circuit_half_opens_after_the_reset_time(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins
) -> None:
    now = [1000.0]
    hub.breakers.clock = lambda: now[0]
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    plugins.alpha.down = True
    for _ in range(CIRCUIT_FAILURES):
        await failing_send(hub, world.a.clinic.id)
    assert (await failing_send(hub, world.a.clinic.id)).extensions["circuit"] == "open"
    now[0] += hub.settings.integration_circuit_reset_seconds
    assert (await circuit_of(gql, world, "mail_alpha"))["circuit"]["state"] == "HALF_OPEN"
    plugins.alpha.down = False
    await send(hub, world.a.clinic.id)  # the trial call succeeds and closes the circuit
    assert (await circuit_of(gql, world, "mail_alpha"))["circuit"]["state"] == "CLOSED"
