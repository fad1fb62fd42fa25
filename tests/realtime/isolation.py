"""Cross-tenant check of every subscription field (used by tests/schema/test_tenant_isolation.py).

Subscription fields take no ids: the connection's token names the clinic. The check:
while B's admin, counselor and patient follow every subscription, clinic A books a
session, and a payment and an email of A change; A's admin hears all three, B hears
nothing (B's counselor and patient are refused the admin-only fields, with no data).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from gateway.app import create_app
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.events import DomainEvent, EmailStatusChanged, EventContext, PaymentChanged, emit
from gateway.settings import Settings
from schema.ids import to_global_id
from tests.factories import World, tomorrow_at
from tests.realtime.conftest import token
from tests.realtime.wsclient import (
    EMAIL_CHANGED,
    PAYMENT_CHANGED,
    SCHEDULE,
    SESSION_CHANGED,
    Subscriber,
    connect,
    graphql,
    serve,
)

SUBSCRIPTIONS = (SESSION_CHANGED, PAYMENT_CHANGED, EMAIL_CHANGED)


async def emit_committed(database: Database, settings: Settings, event: DomainEvent) -> None:
    """Commit a transaction that emits `event`, as the payments and email code do."""
    cipher = DataCipher(settings.encryption_keys)
    async with database.transaction(TenantScope.clinic(event.clinic_id)) as db:
        await emit(EventContext(db=db, cipher=cipher, settings=settings), event)


def changes_of(clinic_id: uuid.UUID) -> list[DomainEvent]:
    now = datetime.now(UTC)
    return [
        PaymentChanged(
            clinic_id=clinic_id, occurred_at=now, payment_id=uuid.uuid4(),
            session_id=uuid.uuid4(), patient_id=uuid.uuid4(), status="succeeded",
            previous_status="pending", amount=15000, amount_refunded=0, currency="USD",
            provider="pay_stripe",
        ),
        EmailStatusChanged(
            clinic_id=clinic_id, occurred_at=now, message_id=uuid.uuid4(),
            notification="session_booked", status="delivered", previous_status="sent",
        ),
    ]  # fmt: skip


async def only_refusals(subscriber: Subscriber, seconds: float = 0.5) -> None:
    """Within `seconds`, `subscriber` gets at most FORBIDDEN refusals, never data."""
    try:
        while True:
            message = await subscriber.message(seconds)
            if message["type"] == "complete":  # the refused subscription ends
                continue
            errors = message.get("payload", {}).get("errors") or []
            assert message["type"] == "next" and not message["payload"].get("data"), message
            assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], message
    except TimeoutError:
        return


async def b_never_hears_of_a(world: World, settings: Settings, database: Database) -> None:
    a, b = world.a, world.b
    app = create_app(settings, database)
    a_token = token(settings, a.admin)
    async with (
        serve(app) as url,
        connect(url, a_token) as a_admin,
        connect(url, token(settings, b.admin)) as b_admin,
        connect(url, token(settings, b.counselor)) as b_counselor,
        connect(url, token(settings, b.patient_user)) as b_patient,
    ):
        for subscriber in (a_admin, b_admin, b_counselor, b_patient):
            for query in SUBSCRIPTIONS:
                await subscriber.subscribe(query)
        await asyncio.sleep(0.2)
        variables = {
            "input": {
                "patientId": to_global_id("Patient", a.own_patient.id),
                "counselorId": to_global_id("User", a.counselor.id),
                "startsAt": tomorrow_at(18).isoformat(),
            }
        }
        await graphql(url, a_token, SCHEDULE, variables)
        for event in changes_of(a.clinic.id):
            await emit_committed(database, settings, event)
        heard = {next(iter((await a_admin.next())["data"])) for _ in SUBSCRIPTIONS}
        assert heard == {"sessionChanged", "paymentChanged", "emailStatusChanged"}
        for subscriber in (b_admin, b_counselor, b_patient):
            await only_refusals(subscriber)
