"""Applying a status change to a payment: the one place that writes status, audits, emits.

Every change (from a request, a checkout callback or a provider webhook) goes
through `advance`, inside the caller's transaction: the audit row and the
PaymentChanged event commit with it, or not at all.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.db.types import utcnow
from gateway.events import EventContext, PaymentChanged, emit
from gateway.payments.models import Payment, PaymentStatus
from gateway.payments.states import COLLECTED, REFUND_STATUSES, is_forward, refund_status
from gateway.services import audit


def audit_payment(
    ectx: EventContext,
    action: str,
    payment: Payment,
    details: dict[str, Any],
    *,
    ip: str | None = None,
) -> None:
    """An audit row about `payment`: ids, amounts and statuses only, never PHI."""
    audit.record(
        ectx.db,
        action,
        clinic_id=payment.clinic_id,
        actor_user_id=ectx.actor_user_id,
        target_type="payment",
        target_id=payment.id,
        details={"session_id": str(payment.session_id), "provider": payment.provider, **details},
        request_id=ectx.request_id,
        ip=ip,
        patient_id=payment.patient_id,
    )


async def announce(ectx: EventContext, payment: Payment, previous: str | None) -> None:
    await emit(
        ectx,
        PaymentChanged(
            clinic_id=payment.clinic_id,
            occurred_at=utcnow(),
            payment_id=payment.id,
            session_id=payment.session_id,
            patient_id=payment.patient_id,
            status=payment.status,
            previous_status=previous,
            amount=payment.amount,
            amount_refunded=payment.amount_refunded,
            currency=payment.currency,
            provider=payment.provider,
        ),
    )


async def advance(
    ectx: EventContext,
    payment: Payment,
    *,
    status: PaymentStatus | None = None,
    amount_refunded: int | None = None,
    source: str,
    details: dict[str, Any] | None = None,
) -> bool:
    """Move `payment` forward to `status` and/or a larger cumulative refund.

    Returns False (and records why) when the change is stale: a status behind the
    current one, or a refund total not above what is already known.
    """
    current = PaymentStatus(payment.status)
    target = current
    refunded = payment.amount_refunded
    if amount_refunded is not None and amount_refunded > refunded:
        refunded = min(amount_refunded, payment.amount)
        # A refund proves the money was collected, even if `succeeded` is still on its way.
        target = refund_status(payment.amount, refunded)
    # Refund statuses follow from amounts only, never from a bare reported word.
    if status is not None and status not in REFUND_STATUSES and is_forward(target, status):
        target = status
    extra = {"source": source, **(details or {})}
    if target == current and refunded == payment.amount_refunded:
        audit_payment(
            ectx,
            "payment.update_ignored",
            payment,
            {"status": current.value, "reported": status.value if status else None, **extra},
        )
        return False
    previous = payment.status
    payment.status = target.value
    payment.amount_refunded = refunded
    payment.updated_at = utcnow()
    if target in COLLECTED and payment.succeeded_at is None:
        payment.succeeded_at = utcnow()
    audit_payment(
        ectx,
        "payment.status_changed",
        payment,
        {"from": previous, "to": target.value, "amount_refunded": refunded, **extra},
    )
    await announce(ectx, payment, previous)
    return True


def derived_id(clinic_id: uuid.UUID, session_id: uuid.UUID, attempt: int) -> uuid.UUID:
    """The payment id of one attempt: a retried request names the same payment."""
    return uuid.uuid5(clinic_id, f"session-payment:{session_id}:{attempt}")


def idempotency_key(clinic_id: uuid.UUID, session_id: uuid.UUID, attempt: int) -> str:
    """What the provider deduplicates creation on: the same attempt never charges twice."""
    return f"santana-payment-{clinic_id}-{session_id}-{attempt}"
