"""Clinic B takes session payments through Razorpay: the real razorpay SDK against the fake."""

from __future__ import annotations

from plugins.pay_razorpay import signing
from tests.payments.conftest import CONFIRM, RAZORPAY_KEY_ID_B, REFUND, PayApp

SLUG = "clinic-b"


async def _paid(pay: PayApp, *, captured: bool = True) -> tuple[dict, dict]:  # type: ignore[type-arg]
    b = pay.world.b
    checkout = await pay.create(b.upcoming_session, b.patient_user)
    fields = pay.providers.razorpay.pay(checkout["orderId"], captured=captured)
    return checkout, fields


async def test_a_patient_pays_through_checkout_and_the_callback_is_verified(pay: PayApp) -> None:
    b = pay.world.b
    checkout, fields = await _paid(pay)
    payment = checkout["payment"]
    # Razorpay Checkout needs the key id and the order id; the order is for the session fee.
    assert checkout["publicKey"] == RAZORPAY_KEY_ID_B and checkout["clientSecret"] is None
    assert checkout["orderId"] == payment["providerReference"]
    order = pay.providers.razorpay.orders[checkout["orderId"]]
    assert order["amount"] == b.upcoming_session.fee_amount
    assert order["receipt"] == order["notes"]["payment_id"]  # our payment id, for retries
    assert set(order["notes"]) == {"clinic_id", "session_id", "payment_id"}

    confirmed = await pay.gql.data(
        CONFIRM,
        {
            "id": payment["id"],
            "p": fields["razorpay_payment_id"],
            "o": fields["razorpay_order_id"],
            "sig": fields["razorpay_signature"],
        },
        user=b.patient_user,
    )
    assert confirmed["confirmRazorpayPayment"]["status"] == "SUCCEEDED"
    # The payment.captured webhook then arrives: verified, recorded, nothing left to change.
    captured = pay.providers.razorpay.events[-1]
    reply = await pay.webhook(SLUG, "pay_razorpay", pay.providers.razorpay.sign(captured))
    assert reply.json()["result"] == "processed"
    assert [e.status for e in pay.events] == ["pending", "succeeded"]
    assert await pay.audit_actions(b.clinic.id) == [
        "payment.created",
        "payment.status_changed",
        "payment.update_ignored",
    ]


async def test_a_forged_checkout_callback_is_refused(pay: PayApp) -> None:
    b = pay.world.b
    checkout, fields = await _paid(pay)
    attempts = {
        "signature made with another secret": signing.checkout_signature(
            "not-the-key-secret", fields["razorpay_order_id"], fields["razorpay_payment_id"]
        ),
        "signature of a different payment": signing.checkout_signature(
            "x", fields["razorpay_order_id"], "pay_other"
        ),
    }
    for what, signature in attempts.items():
        code = await pay.gql.error_code(
            CONFIRM,
            {
                "id": checkout["payment"]["id"],
                "p": fields["razorpay_payment_id"],
                "o": fields["razorpay_order_id"],
                "sig": signature,
            },
            user=b.patient_user,
        )
        assert code == "PROVIDER_REJECTED", what
    assert (await pay.payment(checkout["payment"]["id"], b.admin))["status"] == "PENDING"


async def test_a_failed_payment_by_webhook_and_a_bad_webhook_signature(pay: PayApp) -> None:
    b = pay.world.b
    checkout, _ = await _paid(pay, captured=False)
    event = pay.providers.razorpay.events[-1]
    assert event["event"] == "payment.failed"
    forged = pay.providers.razorpay.sign(event, secret="someone-elses-webhook-secret")
    assert (await pay.webhook(SLUG, "pay_razorpay", forged)).status_code == 400
    assert (await pay.payment(checkout["payment"]["id"], b.admin))["status"] == "PENDING"

    signed = pay.providers.razorpay.sign(event)
    assert (await pay.webhook(SLUG, "pay_razorpay", signed)).json()["result"] == "processed"
    assert (await pay.webhook(SLUG, "pay_razorpay", signed)).json()["result"] == "duplicate"
    seen = await pay.payment(checkout["payment"]["id"], b.admin)
    assert (seen["status"], seen["failureCode"]) == ("FAILED", "BAD_REQUEST_ERROR")


async def test_a_refund_and_its_webhook_count_once(pay: PayApp) -> None:
    b = pay.world.b
    checkout, _ = await _paid(pay)
    razorpay = pay.providers.razorpay
    await pay.webhook(SLUG, "pay_razorpay", razorpay.sign(razorpay.events[-1]))  # captured
    pid, fee = checkout["payment"]["id"], b.upcoming_session.fee_amount

    part = (await pay.gql.data(REFUND, {"id": pid, "amount": 2000}, user=b.admin))["refundPayment"]
    assert part["status"] == "PARTIALLY_REFUNDED" and part["amountRefunded"]["amount"] == 2000
    processed = razorpay.events[-1]
    assert processed["event"] == "refund.processed"
    await pay.webhook(SLUG, "pay_razorpay", razorpay.sign(processed))
    assert (await pay.payment(pid, b.admin))["amountRefunded"]["amount"] == 2000

    rest = (await pay.gql.data(REFUND, {"id": pid}, user=b.admin))["refundPayment"]
    assert rest["status"] == "REFUNDED" and rest["amountRefunded"]["amount"] == fee
    # Refunds go to the captured payment (pay_…), not to the order.
    assert {r["payment_id"] for r in razorpay.refunds.values()} == set(razorpay.payments)


async def test_an_outage_leaves_no_payment_and_a_retry_reuses_the_order(pay: PayApp) -> None:
    b = pay.world.b
    razorpay = pay.providers.razorpay
    razorpay.down = True
    query = "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }"
    variables = {"s": _gid(b.upcoming_session)}
    assert await pay.gql.error_code(query, variables, user=b.patient_user) == "PROVIDER_UNAVAILABLE"
    assert await pay.count(b.clinic.id) == 0 and not razorpay.orders

    # The order is made but the answer is lost: the retry finds it by its receipt.
    razorpay.down, razorpay.lose_next_response = False, True
    assert await pay.gql.error_code(query, variables, user=b.patient_user) == "PROVIDER_UNAVAILABLE"
    assert await pay.count(b.clinic.id) == 0 and len(razorpay.orders) == 1
    retried = await pay.create(b.upcoming_session, b.patient_user)
    assert list(razorpay.orders) == [retried["orderId"]]
    assert await pay.count(b.clinic.id) == 1


def _gid(row: object) -> str:
    from schema.ids import to_global_id

    return to_global_id("CounselingSession", row.id)  # type: ignore[attr-defined]
