"""The payment state machine on its own: forward only, refunds from amounts."""

from __future__ import annotations

import pytest

from gateway.payments.models import PaymentStatus as S
from gateway.payments.states import is_forward, provider_status, refund_status


@pytest.mark.parametrize(
    ("current", "proposed", "forward"),
    [
        (S.PENDING, S.REQUIRES_ACTION, True),
        (S.PENDING, S.SUCCEEDED, True),
        (S.REQUIRES_ACTION, S.FAILED, True),
        (S.FAILED, S.SUCCEEDED, True),  # the payer retried on the same intent/order
        (S.SUCCEEDED, S.FAILED, False),  # a late decline of an earlier card
        (S.SUCCEEDED, S.PENDING, False),
        (S.REFUNDED, S.SUCCEEDED, False),
        (S.SUCCEEDED, S.SUCCEEDED, False),  # a redelivery is not a change
    ],
)
def test_a_payment_only_moves_forward(current: S, proposed: S, forward: bool) -> None:
    assert is_forward(current, proposed) is forward


def test_refund_status_follows_the_amount_refunded() -> None:
    assert refund_status(12000, 0) is S.SUCCEEDED
    assert refund_status(12000, 1) is S.PARTIALLY_REFUNDED
    assert refund_status(12000, 12000) is S.REFUNDED


def test_an_unknown_provider_word_counts_as_pending() -> None:
    assert provider_status("succeeded") is S.SUCCEEDED
    assert provider_status("on_hold") is S.PENDING
