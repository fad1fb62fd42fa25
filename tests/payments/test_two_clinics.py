"""Two clinics, two providers: each takes its payments, neither can touch the other's."""

from __future__ import annotations

import time

from gateway.db.engine import count_statements
from schema.ids import to_global_id
from tests.payments.conftest import CONFIRM, PAYMENT, REFUND, PayApp


async def _stripe_paid(pay: PayApp) -> dict:  # type: ignore[type-arg]
    a = pay.world.a
    checkout = await pay.create(a.upcoming_session, a.patient_user)
    stripe = pay.providers.stripe
    event = stripe.pay(checkout["payment"]["providerReference"])
    await pay.webhook("clinic-a", "pay_stripe", stripe.sign(event))
    return checkout


async def test_stripe_clinic_and_razorpay_clinic_each_take_a_payment(pay: PayApp) -> None:
    a, b = pay.world.a, pay.world.b
    stripe_checkout = await _stripe_paid(pay)
    razorpay_checkout = await pay.create(b.upcoming_session, b.patient_user)
    razorpay = pay.providers.razorpay
    razorpay.pay(razorpay_checkout["orderId"])
    await pay.webhook("clinic-b", "pay_razorpay", razorpay.sign(razorpay.events[-1]))

    listed_a = await pay.gql.data("{ payments { id provider status } }", user=a.admin)
    listed_b = await pay.gql.data("{ payments { id provider status } }", user=b.admin)
    assert listed_a["payments"] == [
        {"id": stripe_checkout["payment"]["id"], "provider": "pay_stripe", "status": "SUCCEEDED"}
    ]
    assert listed_b["payments"] == [
        {
            "id": razorpay_checkout["payment"]["id"],
            "provider": "pay_razorpay",
            "status": "SUCCEEDED",
        }
    ]
    # Each clinic's money went through its own account: nothing crossed over.
    assert len(pay.providers.stripe.intents) == 1 and len(razorpay.orders) == 1


async def test_clinic_b_cannot_read_refund_or_confirm_clinic_a_payments(pay: PayApp) -> None:
    a, b = pay.world.a, pay.world.b
    checkout = await _stripe_paid(pay)
    pid = checkout["payment"]["id"]
    for user in (b.admin, b.counselor, b.patient_user):
        assert await pay.gql.error_code(PAYMENT, {"id": pid}, user=user) == "NOT_FOUND"
        listed = await pay.gql.data("{ payments { id } }", user=user)
        assert listed["payments"] == []
    assert await pay.gql.error_code(REFUND, {"id": pid}, user=b.admin) == "NOT_FOUND"
    confirm = {"id": pid, "p": "pay_x", "o": "order_x", "sig": "00"}
    assert await pay.gql.error_code(CONFIRM, confirm, user=b.patient_user) == "NOT_FOUND"
    create = "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }"
    variables = {"s": to_global_id("CounselingSession", a.upcoming_session.id)}
    assert await pay.gql.error_code(create, variables, user=b.admin) == "NOT_FOUND"
    assert (await pay.payment(pid, a.admin))["status"] == "SUCCEEDED"
    assert not pay.providers.stripe.refunds


async def test_a_webhook_cannot_reach_another_clinic_payment(pay: PayApp) -> None:
    a = pay.world.a
    checkout = await pay.create(a.upcoming_session, a.patient_user)
    stripe = pay.providers.stripe
    declined = stripe.pay(checkout["payment"]["providerReference"], succeed=False)
    # A's Stripe event sent to B's endpoint: B verifies with B's Razorpay secret and refuses.
    reply = await pay.webhook("clinic-b", "pay_razorpay", stripe.sign(declined))
    assert reply.status_code == 400
    # B's own, validly signed event naming A's intent id matches nothing in B.
    razorpay = pay.providers.razorpay
    forged = {
        "event": "payment.failed",
        "payload": {"payment": {"entity": {"order_id": checkout["orderId"], "id": "pay_1"}}},
        "_id": "evt_cross_1",
    }
    reply = await pay.webhook("clinic-b", "pay_razorpay", razorpay.sign(forged))
    assert reply.json()["result"] == "processed"
    assert (await pay.payment(checkout["payment"]["id"], a.admin))["status"] == "PENDING"
    assert "payment.event_unmatched" in await pay.audit_actions(pay.world.b.clinic.id)


async def test_a_list_of_sessions_reads_their_payments_in_one_statement(
    pay: PayApp, backend: str
) -> None:
    a = pay.world.a
    await pay.create(a.upcoming_session, a.patient_user)
    await pay.create(a.past_session, a.admin)
    query = "{ sessions(first: 50) { nodes { id payment { status amount { amount } } } } }"
    async with count_statements() as with_payments:
        data = await pay.gql.data(query, user=a.admin)
    async with count_statements() as without:
        await pay.gql.data("{ sessions(first: 50) { nodes { id } } }", user=a.admin)
    paid = [n for n in data["sessions"]["nodes"] if n["payment"]]
    assert len(paid) == 2
    assert with_payments.count == without.count + 1, with_payments.statements


async def test_a_hanging_provider_is_cut_off_by_the_clinic_timeout(pay: PayApp) -> None:
    """Both SDKs get an explicit per-request timeout, well inside the dispatch timeout."""
    a, b = pay.world.a, pay.world.b
    set_timeout = """mutation($p: String!) {
      updateIntegration(plugin: $p, config: {timeout_seconds: 1.5}) { plugin } }"""
    await pay.gql.data(set_timeout, {"p": "pay_stripe"}, user=a.admin)
    await pay.gql.data(set_timeout, {"p": "pay_razorpay"}, user=b.admin)
    pay.providers.stripe.delay_seconds = pay.providers.razorpay.delay_seconds = 6
    create = "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }"
    for clinic in (a, b):
        variables = {"s": to_global_id("CounselingSession", clinic.upcoming_session.id)}
        started = time.monotonic()
        code = await pay.gql.error_code(create, variables, user=clinic.patient_user)
        assert code == "PROVIDER_UNAVAILABLE", clinic.clinic.slug
        assert time.monotonic() - started < 4, "the SDK call was not cut off by its timeout"
        assert await pay.count(clinic.clinic.id) == 0
