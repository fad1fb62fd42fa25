"""Applying a payment provider's verified webhook event to the payment it names.

Payment plugins parse their provider's event into a `ProviderUpdate` and call
`apply` from `handle_webhook`, inside the transaction that also records the
event's receipt (so a redelivery is already a no-op before it gets here). What
remains is order: a late or stale event is recorded and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from gateway.integrations.types import PluginContext
from gateway.payments.models import Payment, PaymentStatus
from gateway.payments.transitions import advance
from gateway.services import audit


@dataclass(frozen=True)
class ProviderUpdate:
    """What one provider event says about one payment. Ids and amounts only."""

    provider_reference: str  # the checkout object create_payment returned (intent, order)
    event_type: str
    event_id: str
    status: PaymentStatus | None = None
    amount_refunded: int | None = None  # cumulative, as the provider reports it
    provider_charge_id: str | None = None
    failure_code: str | None = None


async def apply(ctx: PluginContext, update: ProviderUpdate) -> bool:
    """Apply `update` in `ctx.db`'s transaction; False if it changed nothing."""
    if ctx.db is None or ctx.events is None or ctx.clinic_id is None:
        raise RuntimeError("provider events are applied only inside handle_webhook")
    payment = await ctx.db.scalar(
        select(Payment)
        .where(
            Payment.clinic_id == ctx.clinic_id,
            Payment.provider == ctx.plugin,
            Payment.provider_reference == update.provider_reference,
        )
        .with_for_update()  # concurrent events for one payment apply one after the other
    )
    details = {"event_type": update.event_type, "event_id": update.event_id}
    if payment is None:
        # Not ours (another integration on the same account) or never committed: keep a trace.
        audit.record(
            ctx.db,
            "payment.event_unmatched",
            clinic_id=ctx.clinic_id,
            actor_user_id=None,
            target_type="payment",
            target_id=None,
            details={"provider": ctx.plugin, **details},
        )
        return False
    if update.provider_charge_id and not payment.provider_charge_id:
        payment.provider_charge_id = update.provider_charge_id
    if (
        update.status is PaymentStatus.FAILED
        and update.failure_code
        and PaymentStatus(payment.status) in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)
    ):
        payment.failure_code = update.failure_code[:64]  # a late decline does not relabel a success
    return await advance(
        ctx.events,
        payment,
        status=update.status,
        amount_refunded=update.amount_refunded,
        source="webhook",
        details=details,
    )
