"""GraphQL for session payments: the Payment type, its queries and mutations.

Amounts always come from the session's fee on the server. Who may do what is
decided in gateway.payments.service (through gateway.auth.permissions): clinic
admins, the session's counselor and the patient may request and see a payment;
only clinic admins refund.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from aiodataloader import DataLoader
from sqlalchemy import select

from gateway.auth.permissions import Action, allowed, session_filter
from gateway.db import models
from gateway.payments import models as payment_models
from gateway.payments import service
from schema.context import GraphQLContext, Info
from schema.ids import from_global_id, to_global_id
from schema.transactions import Transactional
from schema.types import Money

if TYPE_CHECKING:
    from schema.types import CounselingSession


@strawberry.enum(description="Where a payment stands; it only ever moves forward")
class PaymentStatus(Enum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


@strawberry.type(description="One attempt to collect a counseling session's fee")
class Payment:
    id: strawberry.ID
    amount: Money
    amount_refunded: Money
    status: PaymentStatus
    provider: str = strawberry.field(description="The payment plugin, e.g. pay_stripe")
    provider_reference: str = strawberry.field(
        description="The provider's checkout object: Stripe PaymentIntent id, Razorpay order id"
    )
    attempt: int = strawberry.field(description="1 for the first attempt, +1 after a decline")
    failure_code: str | None = strawberry.field(description="The provider's decline code")
    created_at: datetime
    updated_at: datetime
    succeeded_at: datetime | None
    model: strawberry.Private[payment_models.Payment]

    @classmethod
    def from_model(cls, m: payment_models.Payment) -> Payment:
        return cls(
            id=to_global_id("Payment", m.id),
            amount=Money(amount=m.amount, currency=m.currency),
            amount_refunded=Money(amount=m.amount_refunded, currency=m.currency),
            status=PaymentStatus(m.status),
            provider=m.provider,
            provider_reference=m.provider_reference,
            attempt=m.attempt,
            failure_code=m.failure_code,
            created_at=m.created_at,
            updated_at=m.updated_at,
            succeeded_at=m.succeeded_at,
            model=m,
        )

    @strawberry.field(description="The session this payment is for")
    async def session(
        self, info: Info
    ) -> Annotated[CounselingSession, strawberry.lazy("schema.types")] | None:
        from schema.types import CounselingSession

        row = await payment_loaders(info.context).session.load(self.model.session_id)
        return CounselingSession.from_model(row) if row else None


@strawberry.type(description="What the front end's checkout needs to collect a payment")
class PaymentCheckout:
    payment: Payment
    client_secret: str | None = strawberry.field(
        description="Stripe: the PaymentIntent's client secret for Stripe.js"
    )
    public_key: str | None = strawberry.field(
        description="Stripe: the publishable key; Razorpay: the key id for Checkout"
    )
    order_id: str = strawberry.field(
        description="The provider's checkout object (Razorpay order id, Stripe PaymentIntent id)"
    )


class PaymentLoaders:
    """Per-request loaders: a list of sessions costs one payments query, not one each."""

    def __init__(self, ctx: GraphQLContext) -> None:
        self._ctx = ctx
        self.latest = DataLoader(self._latest)
        self.session = DataLoader(self._sessions)

    async def _latest(self, session_ids: list[uuid.UUID]) -> list[payment_models.Payment | None]:
        found = await service.latest_payments(self._ctx, session_ids)
        return [found.get(i) for i in session_ids]

    async def _sessions(self, ids: list[uuid.UUID]) -> list[models.CounselingSession | None]:
        principal = self._ctx.require_principal()
        rows = await self._ctx.db.scalars(
            select(models.CounselingSession).where(
                models.CounselingSession.id.in_(ids), session_filter(principal)
            )
        )
        found = {row.id: row for row in rows}
        return [found.get(i) for i in ids]


def payment_loaders(ctx: GraphQLContext) -> PaymentLoaders:
    # Kept on the request's context object, so they live and die with the request.
    loaders: PaymentLoaders | None = ctx.__dict__.get("_payment_loaders")
    if loaders is None:
        loaders = ctx.__dict__["_payment_loaders"] = PaymentLoaders(ctx)
    return loaders


async def session_payment(info: Info, session: models.CounselingSession) -> Payment | None:
    """`CounselingSession.payment`: the latest attempt, batched across the list."""
    if not allowed(info.context.require_principal(), Action.PAYMENT_READ):
        return None
    row = await payment_loaders(info.context).latest.load(session.id)
    return Payment.from_model(row) if row else None


@strawberry.type
class PaymentQueries:
    @strawberry.field(description="One payment you may see")
    async def payment(self, info: Info, id: strawberry.ID) -> Payment:
        row = await service.get_payment(info.context, from_global_id(id, "Payment"))
        return Payment.from_model(row)

    @strawberry.field(
        description="Payments you may see, newest first (clinic admins: the clinic's all)"
    )
    async def payments(
        self, info: Info, first: int = 50, status: list[PaymentStatus] | None = None
    ) -> list[Payment]:
        statuses = [payment_models.PaymentStatus(s.value) for s in status or []]
        rows = await service.list_payments(info.context, first=first, statuses=statuses)
        return [Payment.from_model(row) for row in rows]


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(
        extensions=[Transactional()],
        description="Start (or resume) collecting a session's fee with the clinic's provider",
    )
    async def create_session_payment(
        self, info: Info, session_id: strawberry.ID
    ) -> PaymentCheckout:
        checkout = await service.create_session_payment(
            info.context, from_global_id(session_id, "CounselingSession", "sessionId")
        )
        return PaymentCheckout(
            payment=Payment.from_model(checkout.payment),
            client_secret=checkout.client_secret,
            public_key=checkout.public_key,
            order_id=checkout.payment.provider_reference,
        )

    @strawberry.mutation(
        extensions=[Transactional()],
        description="Refund all (no amount) or part of a collected payment; clinic admins only",
    )
    async def refund_payment(
        self, info: Info, payment_id: strawberry.ID, amount: int | None = None
    ) -> Payment:
        row = await service.refund_payment(
            info.context, from_global_id(payment_id, "Payment", "paymentId"), amount
        )
        return Payment.from_model(row)

    @strawberry.mutation(
        extensions=[Transactional()],
        description="Razorpay Checkout's handler response: verified, then applied",
    )
    async def confirm_razorpay_payment(
        self,
        info: Info,
        payment_id: strawberry.ID,
        razorpay_payment_id: str,
        razorpay_order_id: str,
        razorpay_signature: str,
    ) -> Payment:
        row = await service.confirm_payment(
            info.context,
            from_global_id(payment_id, "Payment", "paymentId"),
            {
                "razorpay_payment_id": razorpay_payment_id,
                "razorpay_order_id": razorpay_order_id,
                "razorpay_signature": razorpay_signature,
            },
        )
        return Payment.from_model(row)
