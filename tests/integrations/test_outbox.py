"""The outbox: queued with the business change, delivered once, retried, dead-lettered, kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.db.engine import Database
from gateway.db.models import AuditEvent, Patient
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import OutboxMessage, OutboxStatus
from gateway.integrations.outbox import OutboxWorker, enqueue
from gateway.integrations.types import EmailMessage
from gateway.settings import Settings
from gateway.testing import plugin_manager
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.integrations.conftest import KEY_A, Plugins, enable
from tests.integrations.plugins import MemoryMail


def reminder(n: int = 0) -> EmailMessage:
    return EmailMessage(
        to=[f"patient{n}@example.test"], subject="Reminder", text="Your session is tomorrow"
    )


async def queue(hub: IntegrationHub, world: World, n: int = 1) -> list[str]:
    async with hub.database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        return [
            str(
                enqueue(
                    db,
                    hub.cipher,
                    world.a.clinic.id,
                    "email",
                    "send_email",
                    {"message": reminder(i)},
                ).id
            )
            for i in range(n)
        ]


async def messages(database: Database, world: World) -> list[OutboxMessage]:
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        return list(await db.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


async def make_due(database: Database, world: World) -> None:
    """Skip the backoff wait (the schedule itself is checked separately)."""
    async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        await db.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


async def test_enqueued_with_the_business_change_or_not_at_all(
    gql: GraphQLClient, world: World, hub: IntegrationHub
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    with pytest.raises(RuntimeError):
        async with hub.database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
            db.add(Patient(clinic_id=world.a.clinic.id, first_name="New", last_name="Patient"))
            enqueue(
                db, hub.cipher, world.a.clinic.id, "email", "send_email", {"message": reminder()}
            )
            raise RuntimeError("the business change fails")
    assert await messages(hub.database, world) == []
    [message_id] = await queue(hub, world)
    [row] = await messages(hub.database, world)
    assert str(row.id) == message_id and row.status == OutboxStatus.PENDING
    assert "patient0@example.test" not in row.payload_encrypted  # PHI is encrypted at rest


async def test_provider_down_then_up_delivers_exactly_once(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    [message_id] = await queue(hub, world)
    worker = OutboxWorker(hub, rng=lambda: 0.5)
    worker.settings = worker.settings.model_copy(
        update={"outbox_backoff_base_seconds": 60.0, "outbox_backoff_max_seconds": 600.0}
    )
    plugins.alpha.down = True
    stats = await worker.run_once()
    assert (stats.delivered, stats.retried) == (0, 1)
    [row] = await messages(database, world)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and row.lease_owner is None
    assert (
        row.next_attempt_at > utcnow() + timedelta(seconds=40)
        and row.last_error == "provider is down"
    )
    assert (await worker.run_once()).handled == 0  # not due yet: backoff

    plugins.alpha.down = False
    await make_due(database, world)
    assert (await worker.run_once()).delivered == 1
    assert (await worker.run_once()).handled == 0
    [row] = await messages(database, world)
    assert (row.status, row.attempts, row.plugin) == (OutboxStatus.DELIVERED, 2, "mail_alpha")
    assert [(s.message.to, s.idempotency_key) for s in plugins.alpha.sent] == [
        (["patient0@example.test"], message_id)
    ]
    # Sending email discloses patient data: each attempt is audited.
    async with database.session(TenantScope.clinic(world.a.clinic.id)) as db:
        outcomes = list(
            await db.scalars(
                select(AuditEvent.outcome)
                .where(AuditEvent.action == "integration.call")
                .order_by(AuditEvent.created_at)
            )
        )
    assert outcomes == ["failure", "success"]


async def test_dead_letter_after_max_attempts(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    await queue(hub, world)
    hub.breakers.threshold = 100  # keep the circuit out of this test
    hub.breakers.reset(world.a.clinic.id, "mail_alpha")
    plugins.alpha.down = True
    worker = OutboxWorker(hub)
    for attempt in range(1, hub.settings.outbox_max_attempts + 1):
        await make_due(database, world)
        stats = await worker.run_once()
        expected_dead = attempt == hub.settings.outbox_max_attempts
        assert (stats.dead, stats.retried) == ((1, 0) if expected_dead else (0, 1))
    [row] = await messages(database, world)
    assert (row.status, row.attempts) == (OutboxStatus.DEAD, hub.settings.outbox_max_attempts)
    plugins.alpha.down = False
    await make_due(database, world)
    assert (await worker.run_once()).handled == 0 and plugins.alpha.sent == []


async def test_rejected_calls_are_dead_lettered_at_once(
    gql: GraphQLClient, world: World, hub: IntegrationHub, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    async with hub.database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        enqueue(
            db,
            hub.cipher,
            world.a.clinic.id,
            "email",
            "send_email",
            {"message": EmailMessage(to=["reject@example.test"], subject="s", text="t")},
        )
    assert (await OutboxWorker(hub).run_once()).dead == 1
    [row] = await messages(database, world)
    assert (row.status, row.last_error) == (OutboxStatus.DEAD, "The provider refused that address.")


async def test_open_circuit_postpones_without_spending_attempts(
    gql: GraphQLClient, world: World, hub: IntegrationHub, plugins: Plugins, database: Database
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    plugins.alpha.down = True
    breaker = hub.breakers.get(world.a.clinic.id, "mail_alpha")
    for _ in range(hub.breakers.threshold):
        breaker.failure("PROVIDER_UNAVAILABLE", "down")
    await queue(hub, world)
    assert (await OutboxWorker(hub).run_once()).retried == 1
    [row] = await messages(database, world)
    assert row.attempts == 0 and row.status == OutboxStatus.PENDING
    assert row.next_attempt_at > utcnow() + timedelta(seconds=30)


async def test_queued_rows_survive_a_restart(
    gql: GraphQLClient,
    world: World,
    hub: IntegrationHub,
    integration_settings: Settings,
    database: Database,
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    await queue(hub, world, n=2)
    # A worker claimed one batch and then the process died mid-delivery (lease held, nothing sent).
    crashed = OutboxWorker(hub, owner="crashed-worker")
    claimed = await crashed._claim(10)
    assert len(claimed) == 2
    await hub.close()

    # A new process: new engine, new plugin instance, new worker.
    fresh_db = Database(integration_settings.database_url)
    fresh_plugin = MemoryMail("mail_alpha")
    try:
        fresh = IntegrationHub.create(
            integration_settings, fresh_db, manager=plugin_manager(fresh_plugin)
        )
        worker = OutboxWorker(fresh)
        assert (await worker.run_once()).handled == 0  # leases still live
        async with fresh_db.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
            await db.execute(
                update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert (await worker.run_once()).delivered == 2
        assert sorted(s.message.to[0] for s in fresh_plugin.sent) == [
            "patient0@example.test",
            "patient1@example.test",
        ]
        await fresh.close()
    finally:
        await fresh_db.dispose()


def test_backoff_grows_exponentially_with_jitter_and_a_cap(integration_settings: Settings) -> None:
    settings = integration_settings.model_copy(
        update={"outbox_backoff_base_seconds": 10.0, "outbox_backoff_max_seconds": 300.0}
    )
    hub = IntegrationHub.create(settings, Database("sqlite+aiosqlite://"), manager=plugin_manager())
    low, high = OutboxWorker(hub, rng=lambda: 0.0), OutboxWorker(hub, rng=lambda: 1.0)
    assert [low.backoff(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert [high.backoff(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert high.backoff(20).total_seconds() == 300 and low.backoff(20).total_seconds() == 150


@pytest.mark.postgres_only
async def test_concurrent_workers_never_deliver_a_row_twice(
    gql: GraphQLClient,
    world: World,
    hub: IntegrationHub,
    plugins: Plugins,
    integration_settings: Settings,
) -> None:
    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    total = 60
    await queue(hub, world, n=total)
    # Sends take a provider-like moment, and every worker is connected before the race.
    plugins.alpha.send_delay = 0.01
    engines = [Database(integration_settings.database_url) for _ in range(3)]
    for db in engines:
        async with db.engine.connect():
            pass
    try:
        workers = [
            OutboxWorker(
                IntegrationHub(
                    settings=integration_settings,
                    database=db,
                    cipher=hub.cipher,
                    manager=hub.manager,
                    store=hub.store,
                    breakers=hub.breakers,
                ),
                owner=f"worker-{i}",
                concurrency=4,
            )
            for i, db in enumerate(engines)
        ]

        # Rounds in which every worker claims a batch at the same time: each claim
        # skips the rows another worker holds, so all of them get work, and
        # together they must deliver every row exactly once.
        per_worker = [0] * len(workers)
        while True:
            rounds = await asyncio.gather(*(w.run_once(limit=5) for w in workers))
            if not any(stats.handled for stats in rounds):
                break
            # A claim never takes more than its batch, however the others race it.
            assert all(stats.handled <= 5 for stats in rounds), [s.handled for s in rounds]
            for i, stats in enumerate(rounds):
                per_worker[i] += stats.delivered
    finally:
        for db in engines:
            await db.dispose()
    assert sum(per_worker) == total
    assert all(per_worker), f"every worker should have delivered some rows: {per_worker}"
    keys = [s.idempotency_key for s in plugins.alpha.sent]
    assert len(keys) == total and len(set(keys)) == total
    assert plugins.alpha.delivered_keys == set(keys)


async def test_in_process_worker_delivers_while_the_app_runs(
    world: World, integration_settings: Settings, database: Database, gql: GraphQLClient
) -> None:
    from gateway.app import create_app

    await enable(gql, world.a.admin, "mail_alpha", KEY_A)
    settings = integration_settings.model_copy(
        update={"outbox_in_process": True, "outbox_poll_seconds": 0.05}
    )
    alpha = MemoryMail("mail_alpha")
    hub = IntegrationHub.create(settings, database, manager=plugin_manager(alpha))
    app = create_app(settings, database, integrations=hub)
    async with app.router.lifespan_context(app):
        await queue(hub, world)
        for _ in range(100):
            if alpha.sent:
                break
            await asyncio.sleep(0.05)
    assert len(alpha.sent) == 1
    [row] = await messages(database, world)
    assert row.status == OutboxStatus.DELIVERED
