"""Requests that cannot be honoured: each gets a clear error code and changes nothing."""

from __future__ import annotations

from sqlalchemy import update

from gateway.db.models import CounselingSession, SessionStatus
from gateway.db.tenancy import TenantScope
from schema.ids import to_global_id
from tests.payments.conftest import CONFIRM, REFUND, PayApp

CREATE = "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }"


async def _set_session(pay: PayApp, session: CounselingSession, **values: object) -> None:
    async with pay.database.transaction(TenantScope.clinic(session.clinic_id)) as db:
        await db.execute(
            update(CounselingSession).where(CounselingSession.id == session.id).values(**values)
        )


async def test_sessions_that_cannot_be_paid_for(pay: PayApp) -> None:
    a = pay.world.a
    variables = {"s": to_global_id("CounselingSession", a.upcoming_session.id)}
    tried = {
        "a malformed session id": ({"s": "not-an-id"}, "VALIDATION"),
        "a patient's id as the session id": (
            {"s": to_global_id("Patient", a.own_patient.id)},
            "VALIDATION",
        ),
    }
    for what, (bad, code) in tried.items():
        assert await pay.gql.error_code(CREATE, bad, user=a.admin) == code, what

    await _set_session(pay, a.upcoming_session, fee_amount=0)
    assert await pay.gql.error_code(CREATE, variables, user=a.admin) == "VALIDATION"
    await _set_session(pay, a.upcoming_session, fee_amount=12000, status=SessionStatus.CANCELLED)
    assert await pay.gql.error_code(CREATE, variables, user=a.admin) == "VALIDATION"
    assert await pay.count(a.clinic.id) == 0 and not pay.providers.stripe.intents


async def test_no_payment_provider_enabled(pay: PayApp) -> None:
    a = pay.world.a
    await pay.gql.data(
        'mutation { disableIntegration(plugin: "pay_stripe") { enabled } }', user=a.admin
    )
    variables = {"s": to_global_id("CounselingSession", a.upcoming_session.id)}
    assert await pay.gql.error_code(CREATE, variables, user=a.patient_user) == "NOT_CONFIGURED"
    assert await pay.count(a.clinic.id) == 0


async def test_refunds_and_confirmations_that_do_not_apply(pay: PayApp) -> None:
    a = pay.world.a
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    pid = payment["id"]
    # Nothing was collected yet: there is nothing to refund.
    assert await pay.gql.error_code(REFUND, {"id": pid}, user=a.admin) == "CONFLICT"
    stripe = pay.providers.stripe
    await pay.webhook(
        "clinic-a", "pay_stripe", stripe.sign(stripe.pay(payment["providerReference"]))
    )
    for amount in (0, -5):
        code = await pay.gql.error_code(REFUND, {"id": pid, "amount": amount}, user=a.admin)
        assert code == "VALIDATION", f"refund of {amount}"
    # Stripe payments settle by webhook; a Razorpay checkout callback does not apply.
    confirm = {"id": pid, "p": "pay_1", "o": payment["providerReference"], "sig": "00"}
    assert await pay.gql.error_code(CONFIRM, confirm, user=a.patient_user) == "VALIDATION"
    seen = await pay.payment(pid, a.admin)
    assert (seen["status"], seen["amountRefunded"]["amount"]) == ("SUCCEEDED", 0)
    assert not stripe.refunds
