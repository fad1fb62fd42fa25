"""Clinic A takes session payments through Stripe: the real stripe SDK against the fake."""

from __future__ import annotations

import json
import time

from plugins.pay_stripe import signing
from tests.payments.conftest import REFUND, STRIPE_HOOK_A, PayApp

SLUG = "clinic-a"


async def test_a_patient_pays_a_session_end_to_end(pay: PayApp) -> None:
    a = pay.world.a
    checkout = await pay.create(a.upcoming_session, a.patient_user)
    payment = checkout["payment"]
    # The front end gets what Stripe.js needs; the amount is the session's fee.
    assert checkout["clientSecret"].startswith(payment["providerReference"] + "_secret_")
    assert checkout["publicKey"] == "pk_test_a1"
    assert payment["status"] == "PENDING" and payment["attempt"] == 1
    assert payment["amount"] == {"amount": a.upcoming_session.fee_amount, "currency": "USD"}
    sent = pay.providers.stripe.requests[-1]
    assert sent["amount"] == str(a.upcoming_session.fee_amount) and sent["currency"] == "usd"
    # Provider metadata is opaque ids only: no name, email or notes of the patient.
    assert set(sent["metadata"]) == {"clinic_id", "session_id", "payment_id"}
    leaked = json.dumps(sent)
    for phi in (a.own_patient.first_name, a.own_patient.last_name, a.own_patient.email):
        assert phi not in leaked

    event = pay.providers.stripe.pay(payment["providerReference"])
    reply = await pay.webhook(SLUG, "pay_stripe", pay.providers.stripe.sign(event))
    assert reply.json()["result"] == "processed"

    seen = await pay.payment(payment["id"], a.patient_user)
    assert seen["status"] == "SUCCEEDED"
    by_counselor = await pay.gql.data(
        "query($id: ID!) { session(id: $id) { payment { id status } } }",
        {"id": seen["session"]["id"]},
        user=a.counselor,
    )
    assert by_counselor["session"]["payment"] == {"id": payment["id"], "status": "SUCCEEDED"}
    assert [(e.previous_status, e.status) for e in pay.events] == [
        (None, "pending"),
        ("pending", "succeeded"),
    ]
    assert await pay.audit_actions(a.clinic.id) == ["payment.created", "payment.status_changed"]


async def test_a_decline_fails_the_payment_and_the_payer_retries_on_the_same_intent(
    pay: PayApp,
) -> None:
    a = pay.world.a
    stripe = pay.providers.stripe
    first = (await pay.create(a.upcoming_session, a.admin))["payment"]
    declined = stripe.pay(first["providerReference"], succeed=False)
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(declined))
    seen = await pay.payment(first["id"], a.admin)
    assert (seen["status"], seen["failureCode"]) == ("FAILED", "insufficient_funds")

    # Asking again hands out the same intent: a second one could be paid a second time.
    again = await pay.create(a.upcoming_session, a.patient_user)
    assert again["payment"]["id"] == first["id"] and again["payment"]["status"] == "FAILED"
    assert len(stripe.intents) == 1
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(stripe.pay(first["providerReference"])))
    assert (await pay.payment(first["id"], a.admin))["status"] == "SUCCEEDED"


async def test_a_cancelled_intent_gives_way_to_attempt_two(pay: PayApp) -> None:
    a = pay.world.a
    stripe = pay.providers.stripe
    first = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    stripe.cancel(first["providerReference"])  # e.g. cancelled in the Stripe dashboard
    second = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    assert second["attempt"] == 2 and second["id"] != first["id"]
    assert second["providerReference"] != first["providerReference"]
    assert (await pay.payment(first["id"], a.admin))["status"] == "FAILED"
    assert len(stripe.intents) == 2 and await pay.count(a.clinic.id) == 2


async def test_a_repeated_request_hands_out_the_same_intent(pay: PayApp) -> None:
    a = pay.world.a
    first = await pay.create(a.upcoming_session, a.patient_user)
    again = await pay.create(a.upcoming_session, a.counselor)
    assert again["payment"]["id"] == first["payment"]["id"]
    assert again["clientSecret"] == first["clientSecret"]
    assert len(pay.providers.stripe.intents) == 1 and await pay.count(a.clinic.id) == 1


async def test_a_duplicate_webhook_changes_nothing_the_second_time(pay: PayApp) -> None:
    a = pay.world.a
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    signed = pay.providers.stripe.sign(pay.providers.stripe.pay(payment["providerReference"]))
    assert (await pay.webhook(SLUG, "pay_stripe", signed)).json()["result"] == "processed"
    assert (await pay.webhook(SLUG, "pay_stripe", signed)).json()["result"] == "duplicate"
    assert (await pay.audit_actions(a.clinic.id)).count("payment.status_changed") == 1
    assert len(pay.events) == 2  # created, succeeded: once each


async def test_a_late_failure_after_success_does_not_move_the_payment_back(pay: PayApp) -> None:
    a = pay.world.a
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    stripe = pay.providers.stripe
    # The payer's first card fails, the second succeeds; Stripe delivers the failure last.
    failed = stripe.pay(payment["providerReference"], succeed=False)
    succeeded = stripe.pay(payment["providerReference"])
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(succeeded))
    reply = await pay.webhook(SLUG, "pay_stripe", stripe.sign(failed))
    assert reply.json()["result"] == "processed"  # accepted, so Stripe stops retrying…
    seen = await pay.payment(payment["id"], a.admin)
    assert seen["status"] == "SUCCEEDED" and seen["failureCode"] is None  # …and ignored
    assert (await pay.audit_actions(a.clinic.id))[-1] == "payment.update_ignored"


async def test_webhooks_with_a_bad_or_stale_signature_are_refused(pay: PayApp) -> None:
    a = pay.world.a
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    stripe = pay.providers.stripe
    event = stripe.pay(payment["providerReference"])
    attempts = {
        "another endpoint's secret": stripe.sign(event, secret="whsec_someone_else"),
        "signed 6 minutes ago": stripe.sign(event, timestamp=int(time.time()) - 360),
    }
    tampered = stripe.sign(event)
    tampered.body = tampered.body.replace(b'"succeeded"', b'"canceled"')
    attempts["body changed after signing"] = tampered
    no_header = stripe.sign(event)
    no_header.headers.pop(signing.HEADER)
    attempts["no signature header"] = no_header
    for what, signed in attempts.items():
        reply = await pay.webhook(SLUG, "pay_stripe", signed)
        assert reply.status_code == 400, what
    assert (await pay.payment(payment["id"], a.admin))["status"] == "PENDING"
    # Signed properly (within the 5 minute tolerance), the same event is applied.
    fresh = stripe.sign(event, secret=STRIPE_HOOK_A, timestamp=int(time.time()) - 240)
    assert (await pay.webhook(SLUG, "pay_stripe", fresh)).json()["result"] == "processed"


async def test_refunds_partial_then_full_and_only_by_clinic_admins(pay: PayApp) -> None:
    a = pay.world.a
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    stripe = pay.providers.stripe
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(stripe.pay(payment["providerReference"])))
    pid, fee = payment["id"], a.upcoming_session.fee_amount

    for user in (a.counselor, a.patient_user):
        code = await pay.gql.error_code(REFUND, {"id": pid, "amount": 100}, user=user)
        assert code == "FORBIDDEN"
    too_much = await pay.gql.error_code(REFUND, {"id": pid, "amount": fee + 1}, user=a.admin)
    assert too_much == "VALIDATION"

    part = (await pay.gql.data(REFUND, {"id": pid, "amount": 5000}, user=a.admin))["refundPayment"]
    assert part["status"] == "PARTIALLY_REFUNDED" and part["amountRefunded"]["amount"] == 5000
    # Stripe's charge.refunded for that refund reports what we already know: no change.
    refunded_event = stripe.events[-1]
    assert refunded_event["type"] == "charge.refunded"
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(refunded_event))
    assert (await pay.payment(pid, a.admin))["amountRefunded"]["amount"] == 5000

    rest = (await pay.gql.data(REFUND, {"id": pid}, user=a.admin))["refundPayment"]
    assert rest["status"] == "REFUNDED" and rest["amountRefunded"]["amount"] == fee
    assert sum(r["amount"] for r in stripe.refunds.values()) == fee
    again = await pay.gql.error_code(REFUND, {"id": pid}, user=a.admin)
    assert again == "CONFLICT"
    statuses = [e.status for e in pay.events]
    assert statuses == ["pending", "succeeded", "partially_refunded", "refunded"]


async def test_a_provider_outage_leaves_no_payment_and_a_retry_charges_once(pay: PayApp) -> None:
    a = pay.world.a
    stripe = pay.providers.stripe
    stripe.down = True
    body = await pay.gql.execute(
        "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }",
        {"s": _gid(a.upcoming_session)},
        user=a.patient_user,
    )
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert await pay.count(a.clinic.id) == 0 and not pay.events

    # Stripe made the intent but its answer was lost: the retry gets the same one back.
    stripe.down, stripe.lose_next_response = False, True
    code = await pay.gql.error_code(
        "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }",
        {"s": _gid(a.upcoming_session)},
        user=a.patient_user,
    )
    assert code == "PROVIDER_UNAVAILABLE" and await pay.count(a.clinic.id) == 0
    retried = await pay.create(a.upcoming_session, a.patient_user)
    assert list(stripe.intents) == [retried["payment"]["providerReference"]]
    assert await pay.count(a.clinic.id) == 1


async def test_who_may_ask_for_a_payment(pay: PayApp) -> None:
    a = pay.world.a
    query = "mutation($s: ID!) { createSessionPayment(sessionId: $s) { orderId } }"
    variables = {"s": _gid(a.upcoming_session)}
    # Another counselor does not hold the session; the platform admin has no clinical access.
    assert await pay.gql.error_code(query, variables, user=a.counselor2) == "NOT_FOUND"
    assert await pay.gql.error_code(query, variables, user=pay.world.platform_admin) == "FORBIDDEN"
    assert await pay.count(a.clinic.id) == 0


async def test_a_connect_clinic_is_charged_on_its_connected_account(pay: PayApp) -> None:
    a = pay.world.a
    await pay.gql.data(
        """mutation { updateIntegration(plugin: "pay_stripe",
           config: {connect_account: "acct_1ClinicConnect"}) { plugin } }""",
        user=a.admin,
    )
    payment = (await pay.create(a.upcoming_session, a.patient_user))["payment"]
    stripe = pay.providers.stripe
    assert stripe.requests[-1]["owner"] == "acct_1ClinicConnect"
    # A Connect endpoint hears every connected account: another account's event is skipped.
    event = stripe.pay(payment["providerReference"])
    foreign = {**event, "id": "evt_other_account", "account": "acct_1SomeoneElse"}
    assert (await pay.webhook(SLUG, "pay_stripe", stripe.sign(foreign))).status_code == 200
    assert (await pay.payment(payment["id"], a.admin))["status"] == "PENDING"
    own = {**event, "account": "acct_1ClinicConnect"}
    await pay.webhook(SLUG, "pay_stripe", stripe.sign(own))
    assert (await pay.payment(payment["id"], a.admin))["status"] == "SUCCEEDED"


def _gid(row: object) -> str:
    from schema.ids import to_global_id

    return to_global_id("CounselingSession", row.id)  # type: ignore[attr-defined]
