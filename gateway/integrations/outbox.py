"""The transactional outbox: plugin calls queued with the business change, delivered later.

`enqueue` adds a row to the caller's transaction, so the call is queued if and
only if the change commits. `OutboxWorker` (`santana worker`, or in-process in
development) claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so concurrent workers never take the same row), calls the clinic's
plugin with the row id as idempotency key, and then marks the row delivered,
schedules a retry (exponential backoff with jitter, never sooner than a
provider's Retry-After) or dead-letters it. A crash mid-delivery leaves the row
pending; its lease expires and it is retried.

Features that queue calls learn the outcome through `on_delivered(hook)` and
`on_dead(hook)` handlers, which run in the same transaction that marks the row
(e.g. an email's provider message id, an EMR appointment id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.crypto import DataCipher
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.integrations.dispatch import CallInfo, Target, invoke
from gateway.integrations.errors import (
    CircuitOpen,
    IntegrationError,
    NotConfigured,
    ProviderRejected,
)
from gateway.integrations.hookspecs import HOOKS
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import OutboxMessage, OutboxStatus
from gateway.integrations.types import Kind
from gateway.services.context import ServiceContext

log = logging.getLogger("santana.outbox")


# --- producing ------------------------------------------------------------------------------


def enqueue(
    db: AsyncSession,
    cipher: DataCipher,
    clinic_id: uuid.UUID,
    kind: Kind | str,
    hook: str,
    args: dict[str, Any],
    *,
    actor_user_id: uuid.UUID | None = None,
    request_id: str | None = None,
) -> OutboxMessage:
    """Queue `hook(**args)` for the clinic's `kind` plugin, in `db`'s transaction."""
    kind = Kind(kind)
    info = HOOKS.get(hook)
    if info is None or info.kind is not kind:
        raise ValueError(f"{hook!r} is not a {kind.value} hook")
    if set(args) != set(info.args):
        raise ValueError(f"{hook} takes {sorted(info.args)}, got {sorted(args)}")
    encoded = {}
    for name, value in args.items():
        expected = info.args[name]
        if not isinstance(value, expected):
            raise TypeError(f"{hook}({name}=...) must be {expected.__name__}")
        encoded[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    message = OutboxMessage(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        kind=kind.value,
        hook=hook,
        payload_encrypted=cipher.encrypt(json.dumps(encoded)),
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        actor_user_id=actor_user_id,
        request_id=request_id,
    )
    db.add(message)
    return message


def queue(
    ctx: ServiceContext, clinic_id: uuid.UUID, kind: Kind | str, hook: str, **args: Any
) -> OutboxMessage:
    """`enqueue` from a service, on behalf of the request's caller."""
    return enqueue(
        ctx.db,
        ctx.cipher,
        clinic_id,
        kind,
        hook,
        args,
        actor_user_id=ctx.principal.user_id if ctx.principal else None,
        request_id=ctx.request_id,
    )


def decode_args(cipher: DataCipher, message: OutboxMessage) -> dict[str, Any]:
    info = HOOKS[message.hook]
    raw = json.loads(cipher.decrypt(message.payload_encrypted))
    return {
        name: kind.model_validate(raw[name]) if issubclass(kind, BaseModel) else kind(raw[name])
        for name, kind in info.args.items()
    }


# --- outcomes ------------------------------------------------------------------------------

# handler(db, message, args, result): after a successful delivery.
DeliveredHandler = Callable[[AsyncSession, OutboxMessage, dict[str, Any], Any], Awaitable[None]]
# handler(db, message, args, reason): once a message is dead-lettered.
DeadHandler = Callable[[AsyncSession, OutboxMessage, dict[str, Any] | None, str], Awaitable[None]]

_delivered_handlers: dict[str, list[DeliveredHandler]] = {}
_dead_handlers: dict[str, list[DeadHandler]] = {}


def on_delivered(hook: str) -> Callable[[DeliveredHandler], DeliveredHandler]:
    """Run `handler` in the transaction that marks a `hook` message delivered."""

    def register(handler: DeliveredHandler) -> DeliveredHandler:
        _delivered_handlers.setdefault(hook, []).append(handler)
        return handler

    return register


def on_dead(hook: str) -> Callable[[DeadHandler], DeadHandler]:
    """Run `handler` in the transaction that dead-letters a `hook` message."""

    def register(handler: DeadHandler) -> DeadHandler:
        _dead_handlers.setdefault(hook, []).append(handler)
        return handler

    return register


def retry_after(exc: IntegrationError) -> timedelta | None:
    """The provider's own wait (Retry-After), when the plugin reported one."""
    value = exc.extensions.get("retryAfterSeconds")
    try:
        return timedelta(seconds=float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


# --- delivering -----------------------------------------------------------------------------------


@dataclass
class RunStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.delivered + self.retried + self.dead


class OutboxWorker:
    def __init__(
        self,
        hub: IntegrationHub,
        *,
        owner: str | None = None,
        concurrency: int = 4,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.owner = (owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")[-64:]
        self.concurrency = concurrency
        self.rng = rng

    @property
    def lease(self) -> timedelta:
        # Outlasts any delivery (calls stop at the timeout), so a live lease is never stolen.
        return timedelta(seconds=2 * self.settings.integration_timeout_seconds + 30)

    def backoff(self, attempts: int) -> timedelta:
        """Exponential, capped, with 'equal jitter' so retries spread out but never fire at once."""
        base = self.settings.outbox_backoff_base_seconds * 2 ** max(0, attempts - 1)
        delay = min(self.settings.outbox_backoff_max_seconds, base)
        return timedelta(seconds=delay / 2 + self.rng() * delay / 2)

    async def run_once(self, limit: int | None = None) -> RunStats:
        """Claim and deliver what is due now; returns what happened."""
        stats = RunStats()
        claimed = await self._claim(limit or self.settings.outbox_batch_size)
        if not claimed:
            return stats
        gate = asyncio.Semaphore(self.concurrency)

        async def one(clinic_id: uuid.UUID, message_id: uuid.UUID) -> None:
            async with gate:
                await self._deliver(clinic_id, message_id, stats)

        results = await asyncio.gather(*(one(c, m) for c, m in claimed), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                # The row keeps its lease and is retried when it expires.
                log.error("outbox delivery crashed: %s", type(result).__name__)
        return stats

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("outbox worker %s started", self.owner)
        while not stop.is_set():
            try:
                stats = await self.run_once()
            except Exception as exc:  # database briefly away: keep the worker alive
                log.warning("outbox poll failed: %s", type(exc).__name__)
                stats = RunStats()
            if stats.handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.outbox_poll_seconds)
        log.info("outbox worker %s stopped", self.owner)

    async def _claim(self, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        now = utcnow()
        M = OutboxMessage
        due = (
            select(M.id)
            .where(
                M.status == OutboxStatus.PENDING,
                M.next_attempt_at <= now,
                or_(M.lease_until.is_(None), M.lease_until < now),
            )
            .order_by(M.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        # Two statements, not UPDATE ... WHERE id IN (subquery): PostgreSQL may re-run a
        # SKIP LOCKED subquery per row, and a worker would then claim past its limit.
        async with self.hub.database.transaction(TenantScope.cross_clinic()) as db:
            ids = list(await db.scalars(due))
            if not ids:
                return []
            claim = (
                update(M)
                .where(M.id.in_(ids))
                .values(lease_owner=self.owner, lease_until=now + self.lease)
                .returning(M.clinic_id, M.id)
                .execution_options(synchronize_session=False)
            )
            return [(row.clinic_id, row.id) for row in await db.execute(claim)]

    async def _deliver(self, clinic_id: uuid.UUID, message_id: uuid.UUID, stats: RunStats) -> None:
        hub, scope = self.hub, TenantScope.clinic(clinic_id)
        async with hub.database.session(scope) as db:
            message = await db.get(OutboxMessage, (clinic_id, message_id))
            if (
                message is None
                or message.lease_owner != self.owner
                or message.status != OutboxStatus.PENDING
            ):
                return
            row = await hub.enabled_row(db, clinic_id, message.kind)
        who = CallInfo(
            actor_user_id=message.actor_user_id,
            request_id=message.request_id,
            idempotency_key=str(message.id),
        )
        plugin: str | None = None
        args: dict[str, Any] | None = None
        try:
            try:
                args = decode_args(hub.cipher, message)
            except (ValueError, KeyError) as exc:
                raise ProviderRejected(
                    "The queued call cannot be read (payload or key problem)."
                ) from exc
            if row is None:
                raise NotConfigured(f"No {message.kind} integration is enabled for this clinic.")
            plugin = row.plugin
            result = await invoke(hub, Target.from_row(hub, row), message.hook, args, who)
        except CircuitOpen as exc:
            # Not the message's fault: wait for the circuit without spending an attempt.
            retry = timedelta(seconds=float(exc.extensions.get("retryInSeconds", 1)) + 1)
            await self._finish(
                message,
                OutboxStatus.PENDING,
                message.attempts,
                utcnow() + retry,
                exc.message,
                plugin,
            )
            stats.retried += 1
        except ProviderRejected as exc:
            await self._finish(
                message,
                OutboxStatus.DEAD,
                message.attempts + 1,
                utcnow(),
                exc.message,
                plugin,
                after=self._dead_outcome(message, args, exc.message),
            )
            stats.dead += 1
            log.warning("outbox %s dead: rejected (%s)", message.id, exc.code)
        except IntegrationError as exc:
            attempts = message.attempts + 1
            if attempts >= self.settings.outbox_max_attempts:
                await self._finish(
                    message,
                    OutboxStatus.DEAD,
                    attempts,
                    utcnow(),
                    exc.message,
                    plugin,
                    after=self._dead_outcome(message, args, exc.message),
                )
                stats.dead += 1
                log.warning("outbox %s dead after %d attempts (%s)", message.id, attempts, exc.code)
            else:
                wait = self.backoff(attempts)
                hinted = retry_after(exc)
                if hinted is not None:
                    wait = max(wait, min(hinted, self.max_wait))
                when = utcnow() + wait
                await self._finish(
                    message, OutboxStatus.PENDING, attempts, when, exc.message, plugin
                )
                stats.retried += 1
        else:
            await self._finish(
                message,
                OutboxStatus.DELIVERED,
                message.attempts + 1,
                utcnow(),
                None,
                plugin,
                delivered=True,
                after=self._delivered_outcome(message, args or {}, result),
            )
            stats.delivered += 1

    @property
    def max_wait(self) -> timedelta:
        return timedelta(seconds=self.settings.outbox_backoff_max_seconds)

    @staticmethod
    def _delivered_outcome(
        message: OutboxMessage, args: dict[str, Any], result: Any
    ) -> Callable[[AsyncSession], Awaitable[None]] | None:
        handlers = _delivered_handlers.get(message.hook)
        if not handlers:
            return None

        async def run(db: AsyncSession) -> None:
            for handler in handlers:
                await handler(db, message, args, result)

        return run

    @staticmethod
    def _dead_outcome(
        message: OutboxMessage, args: dict[str, Any] | None, reason: str
    ) -> Callable[[AsyncSession], Awaitable[None]] | None:
        handlers = _dead_handlers.get(message.hook)
        if not handlers:
            return None

        async def run(db: AsyncSession) -> None:
            for handler in handlers:
                await handler(db, message, args, reason)

        return run

    async def _finish(
        self,
        message: OutboxMessage,
        status: str,
        attempts: int,
        next_at: datetime,
        error: str | None,
        plugin: str | None,
        *,
        delivered: bool = False,
        after: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        M = OutboxMessage
        values: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "next_attempt_at": next_at,
            "last_error": (error or "")[:500] or None,
            "lease_owner": None,
            "lease_until": None,
            "plugin": plugin,
        }
        if delivered:
            values["delivered_at"] = utcnow()
        async with self.hub.database.transaction(TenantScope.clinic(message.clinic_id)) as db:
            marked = await db.execute(
                update(M)
                .where(
                    M.clinic_id == message.clinic_id,
                    M.id == message.id,
                    M.lease_owner == self.owner,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            # Only the lease holder applies the outcome, and only once.
            if after is not None and marked.rowcount == 1:  # type: ignore[attr-defined]
                await after(db)


async def requeue_dead(db: AsyncSession, clinic_id: uuid.UUID, message_id: uuid.UUID) -> bool:
    """Give a dead-lettered message a fresh set of attempts (operator action)."""
    M = OutboxMessage
    result = await db.execute(
        update(M)
        .where(M.clinic_id == clinic_id, M.id == message_id, M.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
