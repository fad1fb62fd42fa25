"""Razorpay payments for a clinic: orders, the checkout callback, refunds, signed webhooks.

Each clinic uses its own key id and secret. The razorpay SDK is synchronous
(requests), so every call runs in a worker thread, through a `razorpay.Client`
built for that clinic whose requests session carries an explicit timeout.
Orders carry our payment id as `receipt`: a retried creation finds the order it
made before instead of opening a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any

import razorpay
import requests
from pydantic import BaseModel, Field, SecretStr
from razorpay.errors import BadRequestError, SignatureVerificationError
from razorpay.utility.utility import Utility
from starlette.applications import Starlette

from gateway.integrations import (
    Kind,
    NotConfigured,
    PaymentConfirmation,
    PaymentRequest,
    PaymentResult,
    PluginContext,
    PluginDeclaration,
    ProviderRejected,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
    hookimpl,
)
from gateway.payments.models import PaymentStatus
from gateway.payments.provider_events import ProviderUpdate, apply


class RazorpayConfig(BaseModel):
    key_id: str = Field(pattern=r"^rzp_(test|live)_[A-Za-z0-9]+$", description="rzp_test_… key id")
    key_secret: SecretStr = Field(description="The key id's secret")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret of this clinic's webhook in the Razorpay dashboard"
    )
    api_base: str = Field(
        "https://api.razorpay.com", pattern=r"^https?://", description="Razorpay API base address"
    )
    timeout_seconds: float = Field(8.0, gt=0, le=30, description="Per-request timeout")


declaration = PluginDeclaration(
    name="pay_razorpay",
    kind=Kind.PAYMENT,
    label="Razorpay",
    description="Session payments with Razorpay orders and checkout; refunds; signed webhooks.",
    version="1.0.0",
    config_model=RazorpayConfig,
    env_prefix="RAZORPAY_",
)


class _TimedSession(requests.Session):
    """A requests session that never waits without a limit."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def _client(ctx: PluginContext) -> razorpay.Client:
    config: RazorpayConfig = ctx.config
    return razorpay.Client(
        session=_TimedSession(config.timeout_seconds),
        auth=(config.key_id, config.key_secret.get_secret_value()),
        base_url=config.api_base.rstrip("/"),
    )


async def _call(ctx: PluginContext, work: Callable[[razorpay.Client], Any]) -> Any:
    """Run one SDK call in a worker thread; Razorpay's errors become typed errors."""
    client = _client(ctx)
    try:
        return await asyncio.to_thread(work, client)
    except requests.RequestException:
        raise ProviderUnavailable("Razorpay could not be reached.") from None
    except BadRequestError as exc:
        if "authentication" in str(exc).lower():
            raise NotConfigured("Razorpay refused the key id or secret.") from None
        raise ProviderRejected("Razorpay rejected the request.") from None
    except (razorpay.errors.GatewayError, razorpay.errors.ServerError, ValueError):
        raise ProviderUnavailable("Razorpay is unavailable.") from None
    finally:
        client.session.close()


_ORDER_STATUS = {"created": PaymentStatus.PENDING, "attempted": PaymentStatus.PENDING}
_PAYMENT_STATUS = {
    "created": PaymentStatus.PENDING,
    "authorized": PaymentStatus.PENDING,  # captured automatically or by the dashboard
    "captured": PaymentStatus.SUCCEEDED,
    "refunded": PaymentStatus.SUCCEEDED,  # refund amounts arrive apart
    "failed": PaymentStatus.FAILED,
}


def _order_result(ctx: PluginContext, order: dict[str, Any]) -> PaymentResult:
    config: RazorpayConfig = ctx.config
    status = PaymentStatus.SUCCEEDED if order["status"] == "paid" else PaymentStatus.PENDING
    return PaymentResult(
        provider_payment_id=order["id"],
        status=_ORDER_STATUS.get(order["status"], status).value,
        public_key=config.key_id,  # the checkout needs the key id and the order id
    )


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await _call(ctx, lambda c: c.order.all({"count": 1}))


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    await _call(ctx, lambda c: c.order.all({"count": 1}))
    return "Razorpay reachable"


@hookimpl
async def create_payment(ctx: PluginContext, payment: PaymentRequest) -> PaymentResult:
    if payment.provider_payment_id:
        order_id = payment.provider_payment_id
        return _order_result(ctx, await _call(ctx, lambda c: c.order.fetch(order_id)))
    # Razorpay has no idempotency key for orders: the receipt (our payment id) plays its part.
    found = await _call(ctx, lambda c: c.order.all({"receipt": payment.reference}))
    if found.get("items"):
        return _order_result(ctx, found["items"][0])
    order = await _call(
        ctx,
        lambda c: c.order.create(
            {
                "amount": payment.amount,
                "currency": payment.currency.upper(),
                "receipt": payment.reference,
                "notes": payment.metadata,  # opaque ids only
            }
        ),
    )
    ctx.log.info("created order %s", order["id"])
    return _order_result(ctx, order)


@hookimpl
async def confirm_payment(ctx: PluginContext, confirmation: PaymentConfirmation) -> PaymentResult:
    """The checkout's handler fields: signature checked with the SDK, then the payment read."""
    fields = confirmation.fields
    if fields.get("razorpay_order_id") != confirmation.provider_payment_id:
        raise ProviderRejected("The checkout response belongs to another order.")
    try:
        _client(ctx).utility.verify_payment_signature(
            {
                "razorpay_order_id": confirmation.provider_payment_id,
                "razorpay_payment_id": fields.get("razorpay_payment_id", ""),
                "razorpay_signature": fields.get("razorpay_signature", ""),
            }
        )
    except SignatureVerificationError:
        raise ProviderRejected("The checkout signature is invalid.") from None
    payment_id = fields["razorpay_payment_id"]
    paid = await _call(ctx, lambda c: c.payment.fetch(payment_id))
    if paid.get("order_id") != confirmation.provider_payment_id:
        raise ProviderRejected("The checkout response belongs to another order.")
    return PaymentResult(
        provider_payment_id=confirmation.provider_payment_id,
        status=_PAYMENT_STATUS.get(paid.get("status", ""), PaymentStatus.PENDING).value,
        provider_charge_id=payment_id,
        failure_code=paid.get("error_code"),
    )


@hookimpl
async def refund_payment(ctx: PluginContext, refund: RefundRequest) -> RefundResult:
    if not refund.provider_payment_id.startswith("pay_"):
        raise ProviderRejected("The payment has not been captured by Razorpay yet.")
    data = {"amount": refund.amount} if refund.amount is not None else {}
    created = await _call(ctx, lambda c: c.payment.refund(refund.provider_payment_id, data))
    status = {"processed": "succeeded", "failed": "failed"}.get(created.get("status"), "pending")
    return RefundResult(provider_refund_id=created["id"], status=status)


@hookimpl
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    config: RazorpayConfig = ctx.config
    if config.webhook_secret is None:
        raise NotConfigured("Set webhook_secret to receive Razorpay webhooks.")
    signature = request.header("x-razorpay-signature")
    if not signature:
        raise WebhookRejected("missing X-Razorpay-Signature")
    try:
        body = request.body.decode("utf-8")
        Utility().verify_webhook_signature(
            body, signature, config.webhook_secret.get_secret_value()
        )
        payload = json.loads(body)
        kind = str(payload["event"])
        entities = {name: value["entity"] for name, value in payload.get("payload", {}).items()}
    except (SignatureVerificationError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise WebhookRejected("bad signature or payload") from exc
    # Razorpay names each event in a header; redeliveries repeat it.
    event_id = request.header("x-razorpay-event-id") or hashlib.sha256(request.body).hexdigest()
    return WebhookEvent(provider_event_id=event_id, type=kind, data=_facts(entities))


def _facts(entities: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ids, amounts and statuses an event carries; nothing else is kept."""
    payment = entities.get("payment") or {}
    refund = entities.get("refund") or {}
    order = entities.get("order") or {}
    return {
        "order_id": payment.get("order_id") or order.get("id"),
        "payment_id": payment.get("id") or refund.get("payment_id"),
        "amount_refunded": payment.get("amount_refunded"),
        "error_code": payment.get("error_code"),
    }


@hookimpl
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    data = event.data
    order_id = data.get("order_id")  # every event we act on names the order (our reference)
    ids = (event.type, event.provider_event_id)
    update: ProviderUpdate | None = None
    if order_id and event.type in ("payment.captured", "order.paid"):
        update = ProviderUpdate(
            order_id,
            *ids,
            status=PaymentStatus.SUCCEEDED,
            provider_charge_id=data.get("payment_id"),
        )
    elif order_id and event.type == "payment.failed":
        update = ProviderUpdate(
            order_id, *ids, status=PaymentStatus.FAILED, failure_code=data.get("error_code")
        )
    elif order_id and event.type == "refund.processed" and data.get("amount_refunded") is not None:
        update = ProviderUpdate(order_id, *ids, amount_refunded=int(data["amount_refunded"]))
    if update is None:  # an event payments do not act on: still on the record
        ctx.record_event("event_skipped", details={"type": event.type})
        return
    await apply(ctx, update)


def dev_fake_app() -> Starlette:
    """A local Razorpay for the demo (PROVIDER_FAKES), mounted at /_fakes/pay_razorpay."""
    from plugins.pay_razorpay.fake import dev_fake_app as make

    return make()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Razorpay."""
    from plugins.pay_razorpay import fake

    config = {"key_id": fake.DEMO_KEY_ID, "api_base": f"{fakes_url.rstrip('/')}/pay_razorpay"}
    return config, {"key_secret": fake.DEMO_KEY_SECRET, "webhook_secret": fake.DEMO_WEBHOOK_SECRET}
