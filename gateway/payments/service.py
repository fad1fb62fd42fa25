"""Session payments on behalf of a signed-in user: create, confirm, refund, read.

The amount always comes from the session's fee on the server. The provider is
called before anything is written, so a provider outage leaves no row; the
attempt's id and idempotency key are derived from (clinic, session, attempt), so
a retried request reaches the same provider object instead of charging twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from gateway.auth.permissions import Action, payment_filter, require
from gateway.db.models import CounselingSession, SessionStatus
from gateway.errors import Conflict, NotFound, ValidationFailed
from gateway.events import EventContext
from gateway.integrations.dispatch import dispatch, require_hub
from gateway.integrations.errors import NotConfigured
from gateway.integrations.types import (
    Kind,
    PaymentConfirmation,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
)
from gateway.payments.models import Payment, PaymentStatus
from gateway.payments.states import COLLECTED, REFUNDABLE, provider_status
from gateway.payments.transitions import (
    advance,
    announce,
    audit_payment,
    derived_id,
    idempotency_key,
)
from gateway.services import sessions as session_service
from gateway.services.context import ServiceContext

# What the provider's dashboard and the payer's statement show: never a name or a diagnosis.
DESCRIPTION = "Counseling session"
MAX_CONFIRMATION_FIELDS = 10


@dataclass(frozen=True)
class Checkout:
    """What the front end needs to collect a payment with the provider's own checkout."""

    payment: Payment
    client_secret: str | None
    public_key: str | None


async def create_session_payment(ctx: ServiceContext, session_id: uuid.UUID) -> Checkout:
    principal = ctx.require_principal()
    require(principal, Action.PAYMENT_CREATE)
    session = await session_service.get_session(ctx, session_id)  # the caller's sessions only
    if session.status is SessionStatus.CANCELLED:
        raise ValidationFailed("A cancelled session cannot be paid for.", field="sessionId")
    if session.fee_amount <= 0:
        raise ValidationFailed("This session has no fee to pay.", field="sessionId")
    provider = await _enabled_provider(ctx, session.clinic_id)
    latest = await ctx.db.scalar(
        select(Payment)
        .where(Payment.clinic_id == session.clinic_id, Payment.session_id == session.id)
        .order_by(Payment.attempt.desc())
        .limit(1)
    )
    if latest is not None and PaymentStatus(latest.status) in COLLECTED:
        raise Conflict("This session is already paid.", field="sessionId")
    ectx = EventContext.from_service(ctx)
    if latest is not None and latest.provider == provider:
        # The latest attempt's intent/order is handed out again, even after a decline (the
        # payer retries on it): a second provider object could be paid a second time.
        result = await _create_with_provider(
            ctx, session, latest.attempt, latest.provider_reference
        )
        await _note_reported(ectx, latest, result, source="create")
        if provider_status(result.status) is not PaymentStatus.FAILED:
            return Checkout(latest, result.client_secret, result.public_key)
        # The provider closed that object (e.g. a cancelled intent): open the next attempt.
    attempt = latest.attempt + 1 if latest else 1
    payment_id = derived_id(session.clinic_id, session.id, attempt)
    result = await _create_with_provider(ctx, session, attempt, None)
    payment = Payment(
        clinic_id=session.clinic_id,
        id=payment_id,
        session_id=session.id,
        patient_id=session.patient_id,
        attempt=attempt,
        amount=session.fee_amount,
        amount_refunded=0,
        currency=session.currency,
        provider=provider,
        provider_reference=result.provider_payment_id,
        provider_charge_id=result.provider_charge_id,
        status=PaymentStatus.PENDING.value,
        created_by=principal.user_id,
    )
    ctx.db.add(payment)
    await ctx.db.flush()
    audit_payment(
        ectx,
        "payment.created",
        payment,
        {"attempt": attempt, "amount": payment.amount, "currency": payment.currency},
        ip=ctx.ip,
    )
    await announce(ectx, payment, None)
    await _note_reported(ectx, payment, result, source="create")
    return Checkout(payment, result.client_secret, result.public_key)


async def _create_with_provider(
    ctx: ServiceContext,
    session: CounselingSession,
    attempt: int,
    provider_reference: str | None,
) -> PaymentResult:
    """Ask the provider for attempt `attempt`'s intent/order (the existing one, if known)."""
    payment_id = derived_id(session.clinic_id, session.id, attempt)
    request = PaymentRequest(
        amount=session.fee_amount,
        currency=session.currency,
        description=DESCRIPTION,
        reference=str(payment_id),
        metadata={
            "clinic_id": str(session.clinic_id),
            "session_id": str(session.id),
            "payment_id": str(payment_id),
        },
        provider_payment_id=provider_reference,
    )
    result: PaymentResult = await dispatch(
        ctx,
        session.clinic_id,
        Kind.PAYMENT,
        "create_payment",
        idempotency_key=idempotency_key(session.clinic_id, session.id, attempt),
        payment=request,
    )
    return result


async def confirm_payment(
    ctx: ServiceContext, payment_id: uuid.UUID, fields: dict[str, str]
) -> Payment:
    """Apply a checkout callback (e.g. Razorpay's signed handler fields) once its provider
    verified it; webhooks remain the authority, this only lets the payer see success sooner."""
    require(ctx.require_principal(), Action.PAYMENT_CREATE)
    payment = await get_payment(ctx, payment_id)
    if len(fields) > MAX_CONFIRMATION_FIELDS:
        raise ValidationFailed("Too many checkout fields.", field="fields")
    await _require_provider(ctx, payment)
    result: PaymentResult | None = await dispatch(
        ctx,
        payment.clinic_id,
        Kind.PAYMENT,
        "confirm_payment",
        confirmation=PaymentConfirmation(
            provider_payment_id=payment.provider_reference, fields=fields
        ),
    )
    if result is None:
        raise ValidationFailed(
            "This clinic's payment provider confirms payments by webhook only.", field="paymentId"
        )
    await _note_reported(EventContext.from_service(ctx), payment, result, source="checkout")
    return payment


async def refund_payment(ctx: ServiceContext, payment_id: uuid.UUID, amount: int | None) -> Payment:
    require(ctx.require_principal(), Action.PAYMENT_REFUND)
    payment = await get_payment(ctx, payment_id)
    if PaymentStatus(payment.status) not in REFUNDABLE:
        raise Conflict("Only a collected payment can be refunded.", status=payment.status)
    remaining = payment.amount - payment.amount_refunded
    amount = remaining if amount is None else amount
    if amount <= 0 or amount > remaining:
        raise ValidationFailed(
            f"The refund must be between 1 and {remaining} (minor units).",
            field="amount",
            refundable=remaining,
        )
    await _require_provider(ctx, payment)
    result: RefundResult = await dispatch(
        ctx,
        payment.clinic_id,
        Kind.PAYMENT,
        "refund_payment",
        # Same refund of the same remainder = same key: a retry never refunds twice.
        idempotency_key=f"santana-refund-{payment.id}-{payment.amount_refunded}-{amount}",
        refund=RefundRequest(
            provider_payment_id=payment.provider_charge_id or payment.provider_reference,
            amount=amount,
        ),
    )
    ectx = EventContext.from_service(ctx)
    audit_payment(
        ectx,
        "payment.refund_requested",
        payment,
        {
            "amount": amount,
            "provider_refund_id": result.provider_refund_id,
            "result": result.status,
        },
        ip=ctx.ip,
    )
    if result.status == "failed":
        raise Conflict(
            "The provider refused the refund.", providerRefundId=result.provider_refund_id
        )
    if result.status == "succeeded":
        await advance(
            ectx,
            payment,
            amount_refunded=payment.amount_refunded + amount,
            source="refund",
            details={"provider_refund_id": result.provider_refund_id},
        )
    return payment  # a pending refund lands with the provider's refund webhook


async def get_payment(ctx: ServiceContext, payment_id: uuid.UUID) -> Payment:
    principal = ctx.require_principal()
    require(principal, Action.PAYMENT_READ)
    payment = await ctx.db.scalar(
        select(Payment).where(Payment.id == payment_id, payment_filter(principal))
    )
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


async def list_payments(
    ctx: ServiceContext, *, first: int, statuses: Sequence[PaymentStatus] | None = None
) -> list[Payment]:
    """The newest payments the caller may see (a clinic admin: the whole clinic's)."""
    principal = ctx.require_principal()
    require(principal, Action.PAYMENT_READ)
    if not 1 <= first <= ctx.settings.max_page_size:
        raise ValidationFailed(
            f"`first` must be between 1 and {ctx.settings.max_page_size}.", field="first"
        )
    query = select(Payment).where(payment_filter(principal))
    if statuses:
        query = query.where(Payment.status.in_([s.value for s in statuses]))
    query = query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(first)
    return list(await ctx.db.scalars(query))


async def latest_payments(
    ctx: ServiceContext, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Payment]:
    """Each session's latest attempt the caller may see, in one statement (for dataloaders)."""
    principal = ctx.require_principal()
    rows = await ctx.db.scalars(
        select(Payment)
        .where(Payment.session_id.in_(session_ids), payment_filter(principal))
        .order_by(Payment.session_id, Payment.attempt)
    )
    return {row.session_id: row for row in rows}  # the last attempt of each wins


async def _enabled_provider(ctx: ServiceContext, clinic_id: uuid.UUID) -> str:
    row = await require_hub(ctx).enabled_row(ctx.db, clinic_id, Kind.PAYMENT.value)
    if row is None:
        raise NotConfigured("No payment provider is enabled for this clinic.", kind="payment")
    return row.plugin


async def _require_provider(ctx: ServiceContext, payment: Payment) -> None:
    if await _enabled_provider(ctx, payment.clinic_id) != payment.provider:
        raise NotConfigured(
            "The provider that took this payment is no longer enabled for this clinic.",
            plugin=payment.provider,
        )


async def _note_reported(
    ectx: EventContext, payment: Payment, result: PaymentResult, *, source: str
) -> None:
    """Record what the provider said about the payment, if it is news (never a step back)."""
    if result.provider_charge_id and not payment.provider_charge_id:
        payment.provider_charge_id = result.provider_charge_id
    reported = provider_status(result.status)
    if reported is PaymentStatus.FAILED and result.failure_code:
        payment.failure_code = result.failure_code[:64]
    if reported is not PaymentStatus(payment.status) and reported is not PaymentStatus.PENDING:
        await advance(ectx, payment, status=reported, source=source)
