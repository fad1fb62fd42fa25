"""Domain events: what changed, told to every part of the gateway that cares.

Services call `await emit(ectx, event)` inside the transaction that makes the
change. Two kinds of listener hear it:

- *in-transaction* listeners (`@on(EventType)`) run right away on the same
  database session, so what they queue (an outbox email, an EMR push) commits
  if and only if the change commits: nothing is lost, nothing is sent for a
  change that rolled back;
- *after-commit* publishers (`add_publisher`) receive the event once the
  transaction has committed (real-time subscriptions, caches). They never see
  an event whose transaction rolled back.

Events carry ids and facts, never PHI (no names, no notes): listeners load what
they need under the clinic's tenant scope.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.crypto import DataCipher
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.integrations.hub import IntegrationHub
    from gateway.services.context import ServiceContext

log = logging.getLogger("santana.events")

PENDING_KEY = "santana.pending_events"


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every event: which clinic, and when it happened."""

    topic: ClassVar[str] = "event"
    clinic_id: uuid.UUID
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class SessionChanged(DomainEvent):
    """A counseling session was booked, rescheduled, cancelled, completed or missed."""

    topic: ClassVar[str] = "session"
    session_id: uuid.UUID
    patient_id: uuid.UUID
    counselor_id: uuid.UUID
    change: str  # booked | rescheduled | cancelled | completed | no_show
    starts_at: datetime
    ends_at: datetime
    previous_starts_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentChanged(DomainEvent):
    """A session payment moved to a new status (pending … succeeded, refunded)."""

    topic: ClassVar[str] = "payment"
    payment_id: uuid.UUID
    session_id: uuid.UUID
    patient_id: uuid.UUID
    status: str  # pending | requires_action | succeeded | failed | refunded | partially_refunded
    previous_status: str | None
    amount: int  # minor units
    amount_refunded: int
    currency: str
    provider: str


@dataclass(frozen=True, kw_only=True)
class EmailStatusChanged(DomainEvent):
    """An outgoing email moved to a new delivery status (queued, sent, delivered, bounced …)."""

    topic: ClassVar[str] = "email"
    message_id: uuid.UUID
    notification: str  # e.g. session_booked, password_reset
    status: str
    previous_status: str | None
    user_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None


@dataclass
class EventContext:
    """What an in-transaction listener may use: the transaction and the process's tools."""

    db: AsyncSession
    cipher: DataCipher
    settings: Settings
    hub: IntegrationHub | None = None
    actor_user_id: uuid.UUID | None = None
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_service(cls, ctx: ServiceContext) -> EventContext:
        return cls(
            db=ctx.db,
            cipher=ctx.cipher,
            settings=ctx.settings,
            hub=ctx.integrations,
            actor_user_id=ctx.principal.user_id if ctx.principal else None,
            request_id=ctx.request_id,
        )


E = TypeVar("E", bound=DomainEvent)
Listener = Callable[[EventContext, Any], Awaitable[None]]
Publisher = Callable[[DomainEvent], None]

_listeners: dict[type[DomainEvent], list[Listener]] = {}
_publishers: list[Publisher] = []


def on(event_type: type[E]) -> Callable[[Callable[[EventContext, E], Awaitable[None]]], Any]:
    """Register an in-transaction listener for `event_type` (and its subclasses)."""

    def register(listener: Callable[[EventContext, E], Awaitable[None]]) -> Any:
        _listeners.setdefault(event_type, []).append(listener)
        return listener

    return register


def add_publisher(publisher: Publisher) -> Callable[[], None]:
    """Receive every event after its transaction commits; returns a function that removes it.

    Publishers are called synchronously from the commit; they must not block (schedule
    work on the event loop instead) and their failures are logged, never raised.
    """
    _publishers.append(publisher)
    return lambda: _publishers.remove(publisher) if publisher in _publishers else None


async def emit(ectx: EventContext, event: DomainEvent) -> None:
    """Tell the in-transaction listeners now, and the publishers once `ectx.db` commits."""
    for event_type, listeners in list(_listeners.items()):
        if isinstance(event, event_type):
            for listener in list(listeners):
                await listener(ectx, event)
    ectx.db.sync_session.info.setdefault(PENDING_KEY, []).append(event)


@sa_event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    for event in pending or ():
        for publisher in list(_publishers):
            try:
                publisher(event)
            except Exception:  # a broken subscriber never undoes a committed change
                log.exception("event publisher failed for %s", event.topic)


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


__all__ = [
    "DomainEvent",
    "EmailStatusChanged",
    "EventContext",
    "PaymentChanged",
    "SessionChanged",
    "add_publisher",
    "emit",
    "on",
]
