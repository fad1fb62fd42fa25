"""Email under test: the real gateway, the real plugins, fake SendGrid and Mailgun on a port.

One uvicorn server per test session serves whichever fakes the current test installed,
so the plugins make real HTTP calls. Clinic A sends through SendGrid, clinic B through
Mailgun; the outbox worker is run by hand (`mail.deliver()`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from starlette.types import Receive, Scope, Send

import plugins.mail_devbox.plugin as devbox_plugin
import plugins.mail_mailgun.plugin as mailgun_plugin
import plugins.mail_sendgrid.plugin as sendgrid_plugin
from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.events import DomainEvent, EmailStatusChanged, add_publisher
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import OutboxMessage
from gateway.integrations.outbox import OutboxWorker, RunStats
from gateway.notifications.models import EmailMessageRecord
from gateway.settings import Settings, load_settings
from gateway.testing import plugin_manager
from plugins.mail_mailgun.fake import FakeMailgun
from plugins.mail_sendgrid.fake import FakeSendGrid
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World, tomorrow_at
from tests.fakes import served

SENDGRID_KEY_A = "SG.clinic-a-key.4f3e2d1c"
MAILGUN_KEY_B = "key-clinic-b-9a8b7c6d"
MAILGUN_DOMAIN_B = "mg.clinic-b.example"
MAILGUN_SIGNING_B = "mailgun-signing-clinic-b-1234"

ENABLE = """mutation($plugin: String!, $config: JSON, $secrets: JSON, $clinicId: ID) {
  enableIntegration(plugin: $plugin, config: $config, secrets: $secrets, clinicId: $clinicId) {
    plugin status } }"""
SCHEDULE = """mutation($input: ScheduleSessionInput!) { scheduleSession(input: $input) { id } }"""
MESSAGES = """query($status: EmailStatus) { emailMessages(status: $status) {
  id notification recipient status statusReason provider providerMessageId sessionId } }"""


class _Switchboard:
    """An ASGI app that forwards to whichever fake the current test installed."""

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        prefix, _, rest = scope["path"].lstrip("/").partition("/")
        app = self.apps.get(prefix)
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no fake installed"})
            return
        await app({**scope, "path": "/" + rest, "raw_path": None}, receive, send)


@pytest.fixture(scope="session")
def mail_server() -> Iterator[tuple[_Switchboard, str]]:
    board = _Switchboard()
    with served(board) as url:
        yield board, url


@dataclass
class Providers:
    sendgrid: FakeSendGrid
    mailgun: FakeMailgun
    base_url: str


@pytest.fixture
def providers(mail_server: tuple[_Switchboard, str]) -> Iterator[Providers]:
    board, base_url = mail_server
    fakes = Providers(
        FakeSendGrid(api_keys={SENDGRID_KEY_A}),
        FakeMailgun(domains={MAILGUN_DOMAIN_B: MAILGUN_KEY_B}, signing_key=MAILGUN_SIGNING_B),
        base_url,
    )
    board.apps = {"sendgrid": fakes.sendgrid.app(), "mailgun": fakes.mailgun.app()}
    yield fakes
    board.apps = {}


@dataclass
class MailApp:
    gql: GraphQLClient
    http: httpx.AsyncClient
    world: World
    database: Database
    hub: IntegrationHub
    providers: Providers
    settings: Settings
    events: list[EmailStatusChanged] = field(default_factory=list)

    async def enable_sendgrid(self, **config: Any) -> None:
        await self.gql.data(
            ENABLE,
            {
                "plugin": "mail_sendgrid",
                "config": {
                    "from_email": "care@clinic-a.example",
                    "api_base": f"{self.providers.base_url}/sendgrid",
                    "webhook_public_key": self.providers.sendgrid.public_key,
                }
                | config,
                "secrets": {"api_key": SENDGRID_KEY_A},
            },
            user=self.world.a.admin,
        )

    async def enable_mailgun(self) -> None:
        await self.gql.data(
            ENABLE,
            {
                "plugin": "mail_mailgun",
                "config": {
                    "domain": MAILGUN_DOMAIN_B,
                    "from_email": f"care@{MAILGUN_DOMAIN_B}",
                    "api_base": f"{self.providers.base_url}/mailgun",
                },
                "secrets": {"api_key": MAILGUN_KEY_B, "webhook_signing_key": MAILGUN_SIGNING_B},
            },
            user=self.world.b.admin,
        )

    async def book(self, clinic: Any, days: int = 3, hour: int = 9) -> str:
        """Book a session for the clinic's own patient, as its admin; returns the session id."""
        starts = tomorrow_at(hour) + timedelta(days=days - 1)
        data = await self.gql.data(
            SCHEDULE,
            {
                "input": {
                    "patientId": to_global_id("Patient", clinic.own_patient.id),
                    "counselorId": to_global_id("User", clinic.counselor.id),
                    "startsAt": starts.isoformat(),
                }
            },
            user=clinic.admin,
        )
        return str(data["scheduleSession"]["id"])

    async def deliver(self) -> RunStats:
        return await OutboxWorker(self.hub).run_once()

    async def make_due(self) -> None:
        """Time passes: every waiting retry is due now."""
        async with self.database.transaction(TenantScope.cross_clinic()) as db:
            await db.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))

    async def outbox(self, clinic_id: Any) -> list[OutboxMessage]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return list(await db.scalars(select(OutboxMessage)))

    async def rows(self, clinic_id: Any) -> list[EmailMessageRecord]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return list(
                await db.scalars(select(EmailMessageRecord).order_by(EmailMessageRecord.created_at))
            )

    async def messages(self, admin: Any, status: str | None = None) -> list[dict[str, Any]]:
        data = await self.gql.data(MESSAGES, {"status": status}, user=admin)
        return data["emailMessages"]  # type: ignore[no-any-return]

    async def webhook(self, slug: str, plugin: str, signed: Any) -> httpx.Response:
        return await self.http.post(
            f"/webhooks/{slug}/{plugin}", content=signed.body, headers=signed.headers
        )


@pytest.fixture
def mailbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "mailbox"


@pytest.fixture
def mail_settings(settings: Settings, mailbox_dir: Path) -> Settings:
    return load_settings(
        app_env="test",
        database_url=settings.database_url,
        integration_timeout_seconds=5,
        integration_circuit_failures=50,  # outages in these tests must not open the circuit
        dev_mailbox=True,
        dev_mailbox_dir=str(mailbox_dir),
        frontend_url="https://app.santana.test",
    )


@pytest.fixture
async def mail(
    mail_settings: Settings, database: Database, world: World, providers: Providers
) -> AsyncIterator[MailApp]:
    hub = IntegrationHub.create(
        mail_settings,
        database,
        manager=plugin_manager(sendgrid_plugin, mailgun_plugin, devbox_plugin),
    )
    app = create_app(mail_settings, database, integrations=hub)
    events: list[EmailStatusChanged] = []

    def collect(event: DomainEvent) -> None:
        if isinstance(event, EmailStatusChanged):
            events.append(event)

    remove = add_publisher(collect)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http,
        ):
            harness = MailApp(
                GraphQLClient(http, mail_settings),
                http,
                world,
                database,
                hub,
                providers,
                mail_settings,
            )
            harness.events = events
            await harness.enable_sendgrid()
            await harness.enable_mailgun()
            yield harness
    finally:
        remove()
