"""Subscriptions over graphql-transport-ws: scoped like queries, limited, closed on expiry.

Each test serves the gateway on a local port and talks to it with a browser-like
websocket client; bookings go through the HTTP API, as a front end would make them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from gateway.app import GatewayGraphQL, create_app
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.events import EmailStatusChanged, EventContext, PaymentChanged, emit
from gateway.settings import Settings
from schema.ids import to_global_id
from tests.factories import World, tomorrow_at
from tests.realtime.conftest import token
from tests.realtime.wsclient import (
    CANCEL,
    EMAIL_CHANGED,
    PAYMENT_CHANGED,
    SCHEDULE,
    SESSION_CHANGED,
    connect,
    graphql,
    refused,
    serve,
)

QUIET = 0.5  # seconds a subscriber must stay silent to count as "received nothing"


def booking(patient: Any, counselor: Any, hour: int = 15) -> dict[str, Any]:
    return {
        "input": {
            "patientId": to_global_id("Patient", patient.id),
            "counselorId": to_global_id("User", counselor.id),
            "startsAt": tomorrow_at(hour).isoformat(),
        }
    }


async def test_a_booking_reaches_a_staff_and_own_patient_and_never_clinic_b(
    ws_url: str, world: World, realtime_settings: Settings
) -> None:
    """Tried: A's admin books A's counselor with A's own patient while A's admin,
    counselor, second counselor and patient and B's admin, counselor and patient subscribe."""
    a, b = world.a, world.b
    watchers = {
        name: token(realtime_settings, user)
        for name, user in {
            "a.admin": a.admin, "a.counselor": a.counselor, "a.counselor2": a.counselor2,
            "a.patient": a.patient_user, "b.admin": b.admin, "b.counselor": b.counselor,
            "b.patient": b.patient_user,
        }.items()
    }  # fmt: skip
    async with (
        connect(ws_url, watchers["a.admin"]) as a_admin,
        connect(ws_url, watchers["a.counselor"]) as a_counselor,
        connect(ws_url, watchers["a.counselor2"]) as a_counselor2,
        connect(ws_url, watchers["a.patient"]) as a_patient,
        connect(ws_url, watchers["b.admin"]) as b_admin,
        connect(ws_url, watchers["b.counselor"]) as b_counselor,
        connect(ws_url, watchers["b.patient"]) as b_patient,
    ):
        everyone = [a_admin, a_counselor, a_counselor2, a_patient, b_admin, b_counselor, b_patient]
        for subscriber in everyone:
            await subscriber.subscribe(SESSION_CHANGED)
        await asyncio.sleep(0.2)  # subscriptions registered before the change
        booked = await graphql(
            ws_url, watchers["a.admin"], SCHEDULE, booking(a.own_patient, a.counselor)
        )
        session_id = booked["scheduleSession"]["id"]
        for subscriber in (a_admin, a_counselor, a_patient):
            event = (await subscriber.next())["data"]["sessionChanged"]
            assert event["change"] == "booked"
            assert event["session"]["id"] == session_id
            assert event["session"]["counselor"]["email"] == a.counselor.email
        for subscriber in (a_counselor2, b_admin, b_counselor, b_patient):
            await subscriber.nothing_within(QUIET)

        await graphql(ws_url, watchers["a.admin"], CANCEL, {"id": session_id})
        event = (await a_patient.next())["data"]["sessionChanged"]
        assert (event["change"], event["session"]["status"]) == ("cancelled", "CANCELLED")
        for subscriber in (b_admin, b_counselor, b_patient):
            await subscriber.nothing_within(QUIET)


async def test_counselor_and_patient_see_only_their_own_sessions(
    ws_url: str, world: World, realtime_settings: Settings
) -> None:
    """Tried: A's second counselor is booked with another patient of A; A's first counselor
    and A's patient subscribe, and only the admin hears of it."""
    a = world.a
    admin_token = token(realtime_settings, a.admin)
    async with (
        connect(ws_url, admin_token) as admin,
        connect(ws_url, token(realtime_settings, a.counselor)) as counselor,
        connect(ws_url, token(realtime_settings, a.patient_user)) as patient,
    ):
        for subscriber in (admin, counselor, patient):
            await subscriber.subscribe(SESSION_CHANGED)
        await asyncio.sleep(0.2)
        other_patient = a.patients[1]
        await graphql(ws_url, admin_token, SCHEDULE, booking(other_patient, a.counselor2, 17))
        event = (await admin.next())["data"]["sessionChanged"]
        assert event["change"] == "booked"
        await counselor.nothing_within(QUIET)
        await patient.nothing_within(QUIET)


async def emit_committed(database: Database, settings: Settings, event: Any) -> None:
    """Commit a transaction that emits `event` (as the payments and email code do)."""
    async with database.transaction(TenantScope.clinic(event.clinic_id)) as db:
        await emit(
            EventContext(db=db, cipher=DataCipher(settings.encryption_keys), settings=settings),
            event,
        )


def payment_event(clinic_id: uuid.UUID) -> PaymentChanged:
    return PaymentChanged(
        clinic_id=clinic_id, occurred_at=datetime.now(UTC), payment_id=uuid.uuid4(),
        session_id=uuid.uuid4(), patient_id=uuid.uuid4(), status="succeeded",
        previous_status="pending", amount=15000, amount_refunded=0, currency="USD",
        provider="pay_stripe",
    )  # fmt: skip


async def test_payment_and_email_changes_reach_only_that_clinics_admins(
    ws_url: str, world: World, realtime_settings: Settings, database: Database
) -> None:
    """Tried: a payment and an email of clinic A change while A's admin, A's counselor
    and B's admin subscribe to them."""
    a, b = world.a, world.b
    async with (
        connect(ws_url, token(realtime_settings, a.admin)) as a_admin,
        connect(ws_url, token(realtime_settings, a.counselor)) as a_counselor,
        connect(ws_url, token(realtime_settings, b.admin)) as b_admin,
    ):
        await a_admin.subscribe(PAYMENT_CHANGED)
        await a_admin.subscribe(EMAIL_CHANGED)
        await b_admin.subscribe(PAYMENT_CHANGED)
        await a_counselor.subscribe(PAYMENT_CHANGED)
        refusal = await a_counselor.message()
        assert refusal["type"] == "next" and refusal["payload"]["errors"], refusal
        assert refusal["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        await asyncio.sleep(0.2)

        payment = payment_event(a.clinic.id)
        await emit_committed(database, realtime_settings, payment)
        event = (await a_admin.next())["data"]["paymentChanged"]
        assert event == {
            "paymentId": to_global_id("Payment", payment.payment_id),
            "status": "succeeded", "previousStatus": "pending", "amount": 15000,
        }  # fmt: skip
        email = EmailStatusChanged(
            clinic_id=a.clinic.id, occurred_at=datetime.now(UTC), message_id=uuid.uuid4(),
            notification="session_booked", status="delivered", previous_status="sent",
        )  # fmt: skip
        await emit_committed(database, realtime_settings, email)
        event = (await a_admin.next())["data"]["emailStatusChanged"]
        assert (event["notification"], event["status"]) == ("session_booked", "delivered")
        await b_admin.nothing_within(QUIET)


async def test_rolled_back_changes_are_never_announced(
    ws_url: str, world: World, realtime_settings: Settings, database: Database
) -> None:
    """Tried: a transaction emits a payment change of A and then fails."""
    async with connect(ws_url, token(realtime_settings, world.a.admin)) as admin:
        await admin.subscribe(PAYMENT_CHANGED)
        await asyncio.sleep(0.2)
        with pytest.raises(RuntimeError):
            async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
                ectx = EventContext(
                    db=db, cipher=DataCipher(realtime_settings.encryption_keys),
                    settings=realtime_settings,
                )  # fmt: skip
                await emit(ectx, payment_event(world.a.clinic.id))
                raise RuntimeError("the change fails after the event")
        await admin.nothing_within(QUIET)


async def test_bad_and_missing_tokens_are_refused_at_connection_init(
    ws_url: str, world: World, realtime_settings: Settings
) -> None:
    """Tried: no token, a forged token, an expired token, a platform admin's token."""
    expired = token(realtime_settings, world.a.admin, ttl_seconds=-10)
    for tried in (None, "not-a-jwt", expired, token(realtime_settings, world.platform_admin)):
        code, reason = await refused(ws_url, tried)
        assert (code, reason) == (4403, "Forbidden"), tried


async def test_the_socket_closes_with_4403_when_the_token_expires(
    ws_url: str, world: World, realtime_settings: Settings
) -> None:
    """Tried: a counselor subscribes with a token that expires two seconds later."""
    import websockets

    async with connect(ws_url, token(realtime_settings, world.a.counselor, 2)) as counselor:
        await counselor.subscribe(SESSION_CHANGED)
        with pytest.raises(websockets.ConnectionClosed):
            await counselor.message(within=6)
        assert counselor.ws.close_code == 4403
        assert counselor.ws.close_reason == "Access token expired"


def gateway_view(app: Starlette) -> GatewayGraphQL:
    views = (getattr(route, "endpoint", None) for route in app.routes)
    return next(view for view in views if isinstance(view, GatewayGraphQL))


async def test_limits_per_user_and_per_connection_and_cleanup_on_disconnect(
    world: World, realtime_settings: Settings, database: Database
) -> None:
    """Tried: a third connection of one user (limit 2), a third subscription on one
    connection (limit 2), then every client leaving without a goodbye."""
    app = create_app(realtime_settings, database)
    view = gateway_view(app)
    user_token = token(realtime_settings, world.a.counselor)
    async with serve(app) as url:
        async with connect(url, user_token) as first, connect(url, user_token):
            assert view.connections.open_count == 2
            assert await refused(url, user_token) == (4403, "Forbidden")
            await first.subscribe(SESSION_CHANGED)
            await first.subscribe(SESSION_CHANGED)
            third = await first.subscribe(SESSION_CHANGED)
            error = await first.message()
            assert (error["id"], error["type"]) == (third, "error")
            await asyncio.sleep(0.2)
            assert view.bus.subscriber_count == 2
        for _ in range(50):  # the server notices the closed sockets
            if view.connections.open_count == 0 and view.bus.subscriber_count == 0:
                break
            await asyncio.sleep(0.05)
        assert (view.connections.open_count, view.bus.subscriber_count) == (0, 0)
        async with connect(url, user_token):  # the released slot is usable again
            pass
