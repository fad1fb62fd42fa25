"""The event bus: committed domain events, fanned out to this process's subscribers.

Without Redis an event reaches the subscribers of the process that committed it.
With REDIS_URL set every event is published on a channel per clinic
(`<namespace>:events:<clinic id>`), and each process holds ONE pattern subscription
for all of them, so a subscriber on any instance sees a change made on any other.
Delivery is at most once: events are notifications to refetch or redraw, not a log
(an event published while a process is cut off from Redis is not replayed).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from gateway.errors import GatewayError
from gateway.events import DomainEvent, add_publisher
from gateway.realtime.codec import decode, encode

log = logging.getLogger("santana.realtime")

RECONNECT_SECONDS = 1.0


class SubscriberTooSlow(GatewayError):
    """The subscriber fell more than its queue size behind; it should resubscribe and refetch."""

    code = "SUBSCRIBER_TOO_SLOW"


_OVERFLOWED = object()


class Mailbox:
    """One subscriber's bounded queue of events of one clinic."""

    def __init__(self, clinic_id: uuid.UUID, size: int) -> None:
        self.clinic_id = clinic_id
        self._queue: asyncio.Queue[Any] = asyncio.Queue(size + 1)  # +1: room for the overflow mark
        self._size = size

    def offer(self, event: DomainEvent) -> None:
        if self._queue.qsize() >= self._size:
            # Never block the publisher for one slow reader: tell the reader instead.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(_OVERFLOWED)
            return
        self._queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[DomainEvent]:
        while True:
            item = await self._queue.get()
            if item is _OVERFLOWED:
                raise SubscriberTooSlow("Too many events were waiting; resubscribe and refetch.")
            yield item


class EventBus:
    """Publishes committed events and delivers them to local mailboxes, per clinic."""

    def __init__(
        self, redis_url: str | None = None, namespace: str = "santana", queue_size: int = 100
    ) -> None:
        self.redis_url = redis_url
        self.prefix = f"{namespace}:events:"
        self.queue_size = queue_size
        self._mailboxes: dict[uuid.UUID, set[Mailbox]] = {}
        self._redis: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[Any]] = set()
        self._remove_publisher: Any = None
        self._subscribed = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return sum(len(boxes) for boxes in self._mailboxes.values())

    async def start(self, *, listen: bool = True) -> None:
        """Hear committed events (add_publisher) and, with Redis, the other instances'.

        `listen=False`: publish only (a process with no subscribers, e.g. `santana worker`).
        """
        if self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url)
        if self._redis is not None and listen:
            self._reader = asyncio.create_task(self._read_redis(), name="santana-event-bus")
            with suppress(TimeoutError):  # Redis down at start: reading retries in the background
                async with asyncio.timeout(5):
                    await self._subscribed.wait()
        else:
            self._subscribed.set()
        self._remove_publisher = add_publisher(self.publish)

    async def close(self) -> None:
        if self._remove_publisher is not None:
            self._remove_publisher()
        if self._sending:
            await asyncio.wait(self._sending, timeout=2)
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
        if self._redis is not None:
            await self._redis.aclose()

    def publish(self, event: DomainEvent) -> None:
        """Called from the commit (synchronously): schedule the delivery, never wait for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("event %s committed outside an event loop; not published", event.topic)
            return
        if self._redis is None:
            loop.call_soon(self.deliver, event)
            return
        task = loop.create_task(self._send(event))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def deliver(self, event: DomainEvent) -> None:
        """Hand `event` to every local mailbox of its clinic."""
        for mailbox in list(self._mailboxes.get(event.clinic_id, ())):
            mailbox.offer(event)

    @contextmanager
    def subscribe(self, clinic_id: uuid.UUID) -> Iterator[Mailbox]:
        """A mailbox for `clinic_id`'s events while the `with` block lasts."""
        mailbox = Mailbox(clinic_id, self.queue_size)
        self._mailboxes.setdefault(clinic_id, set()).add(mailbox)
        try:
            yield mailbox
        finally:
            boxes = self._mailboxes.get(clinic_id)
            if boxes is not None:
                boxes.discard(mailbox)
                if not boxes:
                    del self._mailboxes[clinic_id]

    async def _send(self, event: DomainEvent) -> None:
        try:
            await self._redis.publish(f"{self.prefix}{event.clinic_id}", encode(event))
        except Exception as exc:  # the change is committed; only its notification is lost
            log.warning("could not publish %s event to Redis: %r", event.topic, exc)

    async def _read_redis(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.prefix + "*")
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=30)
                    if message is not None and message["type"] == "pmessage":
                        self._deliver_wire(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event bus lost Redis (%r); resubscribing", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                with suppress(Exception):
                    await pubsub.aclose()

    def _deliver_wire(self, data: bytes) -> None:
        try:
            event = decode(data)
        except Exception:
            log.warning("unreadable event on the bus; dropped")
            return
        if event is not None:
            self.deliver(event)
