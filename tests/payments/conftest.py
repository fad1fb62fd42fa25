"""Payments under test: the real gateway, the real plugins and SDKs, fake providers on a port.

One uvicorn server per test session serves whichever fake provider the current test
installed (`FakeProviders`), so the stripe and razorpay SDKs make real HTTP calls.
Clinic A takes payments through Stripe, clinic B through Razorpay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Receive, Scope, Send

import plugins.pay_razorpay.plugin as razorpay_plugin
import plugins.pay_stripe.plugin as stripe_plugin
from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.events import DomainEvent, PaymentChanged, add_publisher
from gateway.integrations.hub import IntegrationHub
from gateway.payments.models import Payment
from gateway.settings import Settings, load_settings
from gateway.testing import plugin_manager
from plugins.pay_razorpay.fake import FakeRazorpay
from plugins.pay_stripe.fake import FakeStripe
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World
from tests.fakes import serve as serve  # re-exported: test_contract.py serves its own fakes
from tests.fakes import served

STRIPE_KEY_A = "sk_test_clinic_a_51HxYz"
STRIPE_HOOK_A = "whsec_clinic_a_8f7e6d5c"
RAZORPAY_KEY_ID_B = "rzp_test_clinicB001"
RAZORPAY_SECRET_B = "rzp-secret-clinic-b-3c2b1a"
RAZORPAY_HOOK_B = "rzp-webhook-clinic-b-9a8b7c"

ENABLE = """mutation($plugin: String!, $config: JSON, $secrets: JSON) {
  enableIntegration(plugin: $plugin, config: $config, secrets: $secrets) { plugin status } }"""
CREATE = """mutation($s: ID!) { createSessionPayment(sessionId: $s) {
  clientSecret publicKey orderId
  payment { id status attempt amount { amount currency } provider providerReference } } }"""
PAYMENT = """query($id: ID!) { payment(id: $id) {
  id status attempt failureCode amount { amount currency } amountRefunded { amount }
  providerReference session { id } } }"""
REFUND = """mutation($id: ID!, $amount: Int) { refundPayment(paymentId: $id, amount: $amount) {
  id status amountRefunded { amount } } }"""
CONFIRM = """mutation($id: ID!, $p: String!, $o: String!, $sig: String!) {
  confirmRazorpayPayment(paymentId: $id, razorpayPaymentId: $p, razorpayOrderId: $o,
                         razorpaySignature: $sig) { id status } }"""


class _Switchboard:
    """An ASGI app that forwards to whichever fake the current test installed."""

    def __init__(self) -> None:
        self.stripe: Any = None
        self.razorpay: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        for prefix, app in (("/stripe", self.stripe), ("/razorpay", self.razorpay)):
            if path.startswith(prefix) and app is not None:
                scope = {**scope, "path": path[len(prefix) :], "raw_path": None}
                await app(scope, receive, send)
                return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no fake installed"})


@pytest.fixture(scope="session")
def provider_server() -> Iterator[tuple[_Switchboard, str]]:
    board = _Switchboard()
    with served(board) as url:
        yield board, url


@dataclass
class Providers:
    stripe: FakeStripe
    razorpay: FakeRazorpay
    base_url: str

    @property
    def stripe_url(self) -> str:
        return f"{self.base_url}/stripe"

    @property
    def razorpay_url(self) -> str:
        return f"{self.base_url}/razorpay"


@pytest.fixture
def providers(provider_server: tuple[_Switchboard, str]) -> Iterator[Providers]:
    board, base_url = provider_server
    fakes = Providers(
        FakeStripe(webhook_secret=STRIPE_HOOK_A, connect_accounts={"acct_1ClinicConnect"}),
        FakeRazorpay(
            accounts={RAZORPAY_KEY_ID_B: RAZORPAY_SECRET_B}, webhook_secret=RAZORPAY_HOOK_B
        ),
        base_url,
    )
    board.stripe, board.razorpay = fakes.stripe.app(), fakes.razorpay.app()
    yield fakes
    board.stripe = board.razorpay = None


@dataclass
class PayApp:
    gql: GraphQLClient
    http: httpx.AsyncClient
    world: World
    database: Database
    providers: Providers
    events: list[PaymentChanged] = field(default_factory=list)

    async def enable_stripe(self, **config: Any) -> None:
        await self.gql.data(
            ENABLE,
            {
                "plugin": "pay_stripe",
                "config": {"api_base": self.providers.stripe_url, "publishable_key": "pk_test_a1"}
                | config,
                "secrets": {"secret_key": STRIPE_KEY_A, "webhook_secret": STRIPE_HOOK_A},
            },
            user=self.world.a.admin,
        )

    async def enable_razorpay(self) -> None:
        await self.gql.data(
            ENABLE,
            {
                "plugin": "pay_razorpay",
                "config": {"key_id": RAZORPAY_KEY_ID_B, "api_base": self.providers.razorpay_url},
                "secrets": {"key_secret": RAZORPAY_SECRET_B, "webhook_secret": RAZORPAY_HOOK_B},
            },
            user=self.world.b.admin,
        )

    async def create(self, session: Any, user: Any) -> dict[str, Any]:
        data = await self.gql.data(
            CREATE, {"s": to_global_id("CounselingSession", session.id)}, user=user
        )
        return data["createSessionPayment"]  # type: ignore[no-any-return]

    async def payment(self, payment_id: str, user: Any) -> dict[str, Any]:
        return (await self.gql.data(PAYMENT, {"id": payment_id}, user=user))["payment"]  # type: ignore[no-any-return]

    async def webhook(self, slug: str, plugin: str, signed: Any) -> httpx.Response:
        return await self.http.post(
            f"/webhooks/{slug}/{plugin}", content=signed.body, headers=signed.headers
        )

    async def rows(self, clinic_id: Any) -> list[Payment]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return list(await db.scalars(select(Payment).order_by(Payment.created_at)))

    async def audit_actions(self, clinic_id: Any) -> list[str]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            rows = await db.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.like("payment.%"))
                .order_by(AuditEvent.seq)
            )
            return list(rows)

    async def audit_details(self, clinic_id: Any) -> list[dict[str, Any]]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            rows = await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("payment.%"))
                .order_by(AuditEvent.seq)
            )
            return [dict(r.details or {}, action=r.action) for r in rows]

    async def count(self, clinic_id: Any) -> int:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return int(await db.scalar(select(func.count()).select_from(Payment)) or 0)


@pytest.fixture
def pay_settings(settings: Settings) -> Settings:
    return load_settings(
        app_env="test",
        database_url=settings.database_url,
        integration_timeout_seconds=5,
        integration_circuit_failures=50,  # outages in these tests must not open the circuit
    )


@pytest.fixture
async def pay(
    pay_settings: Settings, database: Database, world: World, providers: Providers
) -> AsyncIterator[PayApp]:
    hub = IntegrationHub.create(
        pay_settings, database, manager=plugin_manager(stripe_plugin, razorpay_plugin)
    )
    app = create_app(pay_settings, database, integrations=hub)
    events: list[PaymentChanged] = []

    def collect(event: DomainEvent) -> None:
        if isinstance(event, PaymentChanged):
            events.append(event)

    remove = add_publisher(collect)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http,
        ):
            harness = PayApp(GraphQLClient(http, pay_settings), http, world, database, providers)
            harness.events = events
            await harness.enable_stripe()
            await harness.enable_razorpay()
            yield harness
    finally:
        remove()
