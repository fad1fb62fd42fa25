"""GraphQL subscriptions (graphql-transport-ws on /graphql): what changed, as it happens.

Events on the bus carry ids only. Each subscriber loads what it may see through the
same services and row filters as its queries (gateway.auth.permissions), under its
own tenant scope, so a subscription never shows more than the matching query would:
staff see their clinic's sessions, a counselor only their own, a patient only theirs;
payment and email status changes go to clinic admins.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import TypeVar

import strawberry

from gateway.auth.permissions import Action, require
from gateway.db.models import Role
from gateway.errors import Forbidden, NotFound, Unauthenticated
from gateway.events import DomainEvent, EmailStatusChanged, PaymentChanged, SessionChanged
from gateway.realtime.connections import Connection
from gateway.services import sessions as session_service
from schema.context import Info
from schema.ids import to_global_id
from schema.types import CounselingSession

E = TypeVar("E", bound=DomainEvent)


@strawberry.type(description="A counseling session was booked, rescheduled, cancelled or ended")
class SessionChangedEvent:
    change: str = strawberry.field(
        description="booked | rescheduled | cancelled | completed | no_show"
    )
    occurred_at: datetime
    previous_starts_at: datetime | None
    session: CounselingSession


@strawberry.type(description="A session payment moved to a new status")
class PaymentChangedEvent:
    payment_id: strawberry.ID
    session_id: strawberry.ID
    status: str
    previous_status: str | None
    amount: int
    amount_refunded: int
    currency: str
    occurred_at: datetime


@strawberry.type(description="A notification email moved to a new delivery status")
class EmailStatusChangedEvent:
    message_id: strawberry.ID
    notification: str
    status: str
    previous_status: str | None
    occurred_at: datetime


def _connection(info: Info) -> Connection:
    connection: Connection | None = getattr(info.context, "connection", None)
    if connection is None:
        raise Unauthenticated(
            "Subscribe over a websocket (graphql-transport-ws) with your token in connection_init.",
            reason="missing",
        )
    return connection


async def _events(info: Info, kind: type[E]) -> AsyncGenerator[E, None]:
    """`kind` events of the subscriber's clinic, each with exclusive use of the context."""
    connection = _connection(info)
    clinic_id = connection.principal.clinic_id
    assert clinic_id is not None  # Connections admits clinic accounts only
    with connection.bus.subscribe(clinic_id) as mailbox:
        async for event in mailbox:
            if not isinstance(event, kind) or connection.expired:
                continue
            async with connection.turn(info.context):
                yield event


def _require_clinic_admin(info: Info) -> None:
    if _connection(info).principal.role is not Role.CLINIC_ADMIN:
        raise Forbidden("Only clinic admins may follow payments and emails.")


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Sessions you may see, as they are booked, moved, cancelled or completed"
    )
    async def session_changed(self, info: Info) -> AsyncGenerator[SessionChangedEvent, None]:
        principal = _connection(info).principal
        require(principal, Action.SESSION_READ)
        async for event in _events(info, SessionChanged):
            if principal.role is Role.COUNSELOR and event.counselor_id != principal.user_id:
                continue  # saves a query per colleague's change; get_session still decides
            try:  # the same lookup as the `session` query: tenant fence and row filter
                row = await session_service.get_session(info.context, event.session_id)
            except NotFound:
                continue  # not this subscriber's to see
            yield SessionChangedEvent(
                change=event.change,
                occurred_at=event.occurred_at,
                previous_starts_at=event.previous_starts_at,
                session=CounselingSession.from_model(row),
            )

    @strawberry.subscription(description="Payment status changes of your clinic (clinic admins)")
    async def payment_changed(self, info: Info) -> AsyncGenerator[PaymentChangedEvent, None]:
        _require_clinic_admin(info)
        async for event in _events(info, PaymentChanged):
            yield PaymentChangedEvent(
                payment_id=to_global_id("Payment", event.payment_id),
                session_id=to_global_id("CounselingSession", event.session_id),
                status=event.status,
                previous_status=event.previous_status,
                amount=event.amount,
                amount_refunded=event.amount_refunded,
                currency=event.currency,
                occurred_at=event.occurred_at,
            )

    @strawberry.subscription(
        description="Email delivery status changes of your clinic (clinic admins)"
    )
    async def email_status_changed(
        self, info: Info
    ) -> AsyncGenerator[EmailStatusChangedEvent, None]:
        _require_clinic_admin(info)
        async for event in _events(info, EmailStatusChanged):
            yield EmailStatusChangedEvent(
                message_id=to_global_id("EmailMessage", event.message_id),
                notification=event.notification,
                status=event.status,
                previous_status=event.previous_status,
                occurred_at=event.occurred_at,
            )
