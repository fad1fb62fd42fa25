"""POST /webhooks/{clinic}/{plugin}: verified with that clinic's secret; redelivery is a no-op."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import WebhookReceipt
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import HOOK_SECRET_A, KEY_A, KEY_B, Plugins, enable
from tests.integrations.plugins import sign


async def counts(database: Database, world: World) -> tuple[int, int]:
    """(receipts, effects) recorded for clinic A."""
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        receipts = await db.scalar(select(func.count()).select_from(WebhookReceipt))
        effects = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "mail_alpha.delivered")
        )
    return int(receipts or 0), int(effects or 0)


def event(event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "type": "delivered"}).encode()


async def test_bad_signature_is_400_and_stores_nothing(
    gql: GraphQLClient, world: World, database: Database, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, webhook_secret=HOOK_SECRET_A)
    body = event()
    for headers in (
        {},
        {"x-signature": "0" * 64},
        {"x-signature": sign(body, "whsec-someone-else-000")},
    ):
        response = await gql.http.post(
            "/webhooks/clinic-a/mail_alpha", content=body, headers=headers
        )
        assert response.status_code == 400
        assert HOOK_SECRET_A not in response.text
    assert await counts(database, world) == (0, 0)
    assert plugins.alpha.handled == []


async def test_verified_event_is_applied_once_even_when_redelivered(
    gql: GraphQLClient, world: World, database: Database, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, webhook_secret=HOOK_SECRET_A)
    body = event("evt_42")
    headers = {"x-signature": sign(body, HOOK_SECRET_A)}
    first = await gql.http.post("/webhooks/clinic-a/mail_alpha", content=body, headers=headers)
    again = await gql.http.post(
        f"/webhooks/{world.a.clinic.id}/mail_alpha", content=body, headers=headers
    )
    assert (first.status_code, first.json()["result"]) == (200, "processed")
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    assert await counts(database, world) == (1, 1)
    assert plugins.alpha.handled == ["evt_42"]


async def test_each_clinic_verifies_with_its_own_secret(
    gql: GraphQLClient, world: World, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, webhook_secret=HOOK_SECRET_A)
    await enable(gql, world.b.admin, "mail_alpha", KEY_B, webhook_secret="whsec-clinic-b-99887766")
    body = event("evt_7")
    signed_for_a = {"x-signature": sign(body, HOOK_SECRET_A)}
    assert (
        await gql.http.post("/webhooks/clinic-b/mail_alpha", content=body, headers=signed_for_a)
    ).status_code == 400
    assert (
        await gql.http.post("/webhooks/clinic-a/mail_alpha", content=body, headers=signed_for_a)
    ).status_code == 200


async def test_failed_effect_stores_no_receipt_so_the_retry_applies_it(
    gql: GraphQLClient, world: World, database: Database, plugins: Plugins
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A, webhook_secret=HOOK_SECRET_A)
    body = event("evt_9")
    headers = {"x-signature": sign(body, HOOK_SECRET_A)}
    plugins.alpha.fail_handling = True
    failed = await gql.http.post("/webhooks/clinic-a/mail_alpha", content=body, headers=headers)
    assert failed.status_code == 503 and await counts(database, world) == (0, 0)
    plugins.alpha.fail_handling = False
    retried = await gql.http.post("/webhooks/clinic-a/mail_alpha", content=body, headers=headers)
    assert retried.json()["result"] == "processed" and await counts(database, world) == (1, 1)


async def test_unknown_or_disabled_endpoints_are_404(gql: GraphQLClient, world: World) -> None:
    body = event()
    headers = {"x-signature": sign(body, HOOK_SECRET_A)}
    for path in (
        "/webhooks/no-such-clinic/mail_alpha",
        "/webhooks/clinic-a/no_such_plugin",
        "/webhooks/clinic-a/mail_alpha",
    ):  # installed, but not enabled for clinic A
        assert (await gql.http.post(path, content=body, headers=headers)).status_code == 404
    assert (await gql.http.get("/webhooks/clinic-a/mail_alpha")).status_code == 405
