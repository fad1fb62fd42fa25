"""Business metrics: what a platform admin reads on the dashboard and through GraphQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import Integration
from gateway.ops.business import month_start, set_plan_fee
from gateway.payments.models import Payment
from gateway.settings import Settings
from tests.factories import World
from tests.ops.conftest import bearer, gql

QUERY = """{ businessMetrics { totalClinics activeClinics totalPatients sessionsThisMonth
  paymentVolumeThisMonth { amount currency } mrr { amount currency }
  featureAdoption { kind plugin clinics share } } }"""


def _sessions_this_month(world: World) -> int:
    start = month_start(datetime.now(UTC))
    end = (start + timedelta(days=32)).replace(day=1)
    return sum(start <= s.starts_at < end for cw in (world.a, world.b) for s in cw.sessions)


async def test_business_metrics_for_platform_admins(
    http: httpx.AsyncClient,
    world: World,
    settings: Settings,
    database: Database,
    backend: str,
) -> None:
    await set_plan_fee(settings, "clinic-a", 49_900)
    await set_plan_fee(settings, "clinic-b", 29_900)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        db.add(
            Integration(
                clinic_id=world.a.clinic.id,
                plugin="mail_demo",
                kind="email",
                enabled=True,
                config={},
                status="active",
            )
        )
    # Payments of every status and currency (gateway/payments), this month and last.
    now = datetime.now(UTC)
    session = world.a.past_session
    async with database.transaction(TenantScope.cross_clinic()) as db:
        for n, (amount, currency, status, when) in enumerate(
            [
                (12_000, "usd", "succeeded", now),
                (8_000, "USD", "succeeded", now),
                (5_000, "INR", "captured", now),
                (9_999, "USD", "failed", now),
                (7_000, "USD", "succeeded", now - timedelta(days=40)),
            ]
        ):
            db.add(
                Payment(
                    clinic_id=session.clinic_id,
                    id=uuid.uuid4(),
                    session_id=session.id,
                    patient_id=session.patient_id,
                    attempt=n + 1,
                    amount=amount,
                    amount_refunded=0,
                    currency=currency,
                    provider="pay_demo",
                    provider_reference=f"ref-{n}",
                    status=status,
                    created_at=when,
                )
            )
    denied = (await gql(http, QUERY, headers=bearer(world.a.admin, settings))).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = (await gql(http, QUERY, headers=bearer(world.platform_admin, settings))).json()
    m = body["data"]["businessMetrics"]
    assert (m["totalClinics"], m["activeClinics"], m["totalPatients"]) == (2, 2, 6)
    assert m["sessionsThisMonth"] == _sessions_this_month(world)
    assert m["mrr"] == [{"amount": 79_800, "currency": "USD"}]
    assert sorted((p["currency"], p["amount"]) for p in m["paymentVolumeThisMonth"]) == [
        ("INR", 5_000),
        ("USD", 20_000),
    ]
    assert {"kind": "email", "plugin": None, "clinics": 1, "share": 0.5} in m["featureAdoption"]
    assert {"kind": "email", "plugin": "mail_demo", "clinics": 1, "share": 0.5} in m[
        "featureAdoption"
    ]


async def test_business_metrics_without_payments_or_integrations(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    m = (await gql(http, QUERY, headers=bearer(world.platform_admin, settings))).json()["data"][
        "businessMetrics"
    ]
    assert m["paymentVolumeThisMonth"] == [] and m["mrr"] == [] and m["featureAdoption"] == []
    assert m["totalPatients"] == 6
