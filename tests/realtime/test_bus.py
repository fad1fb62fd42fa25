"""The in-process event bus: per-clinic delivery, bounded mailboxes, clean unsubscribe."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from gateway.events import SessionChanged
from gateway.realtime.bus import EventBus, SubscriberTooSlow


def changed(clinic_id: uuid.UUID) -> SessionChanged:
    now = datetime.now(UTC)
    return SessionChanged(
        clinic_id=clinic_id, occurred_at=now, session_id=uuid.uuid4(), patient_id=uuid.uuid4(),
        counselor_id=uuid.uuid4(), change="booked", starts_at=now, ends_at=now,
    )  # fmt: skip


async def test_events_reach_only_the_mailboxes_of_their_clinic() -> None:
    bus = EventBus(queue_size=10)
    a, b = uuid.uuid4(), uuid.uuid4()
    with bus.subscribe(a) as a_box, bus.subscribe(b) as b_box:
        event = changed(a)
        bus.deliver(event)
        assert await anext(aiter(a_box)) == event
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await anext(aiter(b_box))
    assert bus.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_is_told_not_waited_for() -> None:
    """Tried: 4 events for a mailbox of 3 that nobody reads."""
    bus = EventBus(queue_size=3)
    clinic = uuid.uuid4()
    with bus.subscribe(clinic) as box:
        for _ in range(4):
            bus.deliver(changed(clinic))  # never blocks the committing request
        with pytest.raises(SubscriberTooSlow):
            await anext(aiter(box))


async def test_a_publish_only_bus_reaches_the_listeners_of_another_through_redis() -> None:
    """As `santana worker` (publishes email and payment changes) and a gateway instance."""
    from tests.realtime.conftest import REDIS_URL, run_namespace

    namespace = run_namespace()
    worker, gateway = EventBus(REDIS_URL, namespace), EventBus(REDIS_URL, namespace)
    await worker.start(listen=False)
    await gateway.start()
    try:
        clinic = uuid.uuid4()
        with gateway.subscribe(clinic) as box:
            event = changed(clinic)
            worker.publish(event)
            async with asyncio.timeout(5):
                assert await anext(aiter(box)) == event
    finally:
        await worker.close()
        await gateway.close()
