"""The payment state machine: which status changes are allowed, and which are stale.

Provider events arrive twice, late and out of order, so a payment only ever moves
forward along this order; anything that would move it back is ignored:

    pending -> requires_action -> failed -> succeeded -> partially_refunded -> refunded

`failed` sits below `succeeded` because a payer may retry on the same provider
object (another card) and succeed; a `failed` arriving after `succeeded` is stale.
Refund amounts only grow (the provider reports the cumulative amount refunded).
"""

from __future__ import annotations

from gateway.payments.models import PaymentStatus

RANK: dict[PaymentStatus, int] = {
    PaymentStatus.PENDING: 0,
    PaymentStatus.REQUIRES_ACTION: 1,
    PaymentStatus.FAILED: 2,
    PaymentStatus.SUCCEEDED: 3,
    PaymentStatus.PARTIALLY_REFUNDED: 4,
    PaymentStatus.REFUNDED: 5,
}

# "Money was collected": the session is paid, no new attempt may open.
COLLECTED = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})
REFUND_STATUSES = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})


def is_forward(current: PaymentStatus, proposed: PaymentStatus) -> bool:
    """True if moving from `current` to `proposed` is progress (never back, never sideways)."""
    return RANK[proposed] > RANK[current]


def refund_status(amount: int, amount_refunded: int) -> PaymentStatus:
    """The status a collected payment has once `amount_refunded` of `amount` went back."""
    if amount_refunded >= amount:
        return PaymentStatus.REFUNDED
    if amount_refunded > 0:
        return PaymentStatus.PARTIALLY_REFUNDED
    return PaymentStatus.SUCCEEDED


def provider_status(value: str) -> PaymentStatus:
    """A plugin's reported status, read generously: unknown words count as pending."""
    try:
        return PaymentStatus(value)
    except ValueError:
        return PaymentStatus.PENDING
