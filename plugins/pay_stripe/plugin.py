"""Stripe payments for a clinic: PaymentIntents, refunds, signed webhooks.

Each clinic uses its own secret key, or the platform's key (STRIPE_SECRET_KEY)
with its Connect account id sent as `Stripe-Account` on every request. Calls go
through a `stripe.StripeClient` built for that clinic (never the global
`stripe.api_key`), with the SDK's async HTTPX client and an explicit timeout, so
the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import stripe
from pydantic import BaseModel, Field, SecretStr
from starlette.applications import Starlette

from gateway.integrations import (
    Kind,
    NotConfigured,
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

WEBHOOK_TOLERANCE_SECONDS = 300


class StripeConfig(BaseModel):
    secret_key: SecretStr = Field(
        description="sk_… of the clinic's own account, or the platform's key when using Connect"
    )
    connect_account: str | None = Field(
        None, pattern=r"^acct_[A-Za-z0-9]+$", description="Connect account id (acct_…), if any"
    )
    publishable_key: str | None = Field(
        None, pattern=r"^pk_(test|live)_", description="pk_… handed to the front end's checkout"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="whsec_… of this clinic's webhook endpoint"
    )
    api_base: str = Field(
        "https://api.stripe.com", pattern=r"^https?://", description="Stripe API base address"
    )
    timeout_seconds: float = Field(8.0, gt=0, le=30, description="Per-request timeout")


declaration = PluginDeclaration(
    name="pay_stripe",
    kind=Kind.PAYMENT,
    label="Stripe",
    description="Session payments with Stripe PaymentIntents; refunds; signed webhooks.",
    version="1.0.0",
    config_model=StripeConfig,
    env_prefix="STRIPE_",
)

# One pooled async HTTP client per event loop (httpx pools cannot cross loops).
_http_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Any]] = (
    weakref.WeakKeyDictionary()
)


def _client(ctx: PluginContext) -> stripe.StripeClient:
    config: StripeConfig = ctx.config
    per_loop = _http_clients.setdefault(asyncio.get_running_loop(), {})
    http = per_loop.get(config.timeout_seconds)
    if http is None:
        http = per_loop[config.timeout_seconds] = stripe.HTTPXClient(timeout=config.timeout_seconds)
    return stripe.StripeClient(
        config.secret_key.get_secret_value(),
        stripe_account=config.connect_account,
        base_addresses={"api": config.api_base.rstrip("/")},
        http_client=http,
        max_network_retries=0,  # our callers retry with the same idempotency key
    )


async def _call(awaitable: Any) -> Any:
    """Await one SDK call; Stripe's errors become the gateway's typed errors."""
    try:
        return await awaitable
    except stripe.APIConnectionError:
        raise ProviderUnavailable("Stripe could not be reached.") from None
    except (stripe.AuthenticationError, stripe.PermissionError):
        raise NotConfigured("Stripe refused the API key or the Connect account.") from None
    except stripe.CardError as exc:
        raise ProviderRejected(
            "The card was declined.", declineCode=str(exc.code or "card_declined")
        ) from None
    except stripe.RateLimitError:
        raise ProviderUnavailable(
            "Stripe is rate limiting requests.", retryAfterSeconds=2
        ) from None
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
        raise ProviderRejected(
            f"Stripe rejected the request ({exc.code or type(exc).__name__})."
        ) from None
    except stripe.StripeError as exc:
        raise ProviderUnavailable(f"Stripe failed ({type(exc).__name__}).") from None


# Stripe's PaymentIntent statuses, in the gateway's words.
_INTENT_STATUS = {
    "requires_payment_method": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "processing": PaymentStatus.PENDING,
    "requires_capture": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.FAILED,
}


def _result(ctx: PluginContext, stripe_intent: Any) -> PaymentResult:
    config: StripeConfig = ctx.config
    intent = stripe_intent.to_dict()
    charge = intent.get("latest_charge")
    return PaymentResult(
        provider_payment_id=intent["id"],
        status=_INTENT_STATUS.get(intent["status"], PaymentStatus.PENDING).value,
        client_secret=intent.get("client_secret"),
        public_key=config.publishable_key,
        provider_charge_id=charge if isinstance(charge, str) else None,
    )


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await _call(_client(ctx).v1.balance.retrieve_async())


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    await _call(_client(ctx).v1.balance.retrieve_async())
    return "Stripe reachable"


@hookimpl
async def create_payment(ctx: PluginContext, payment: PaymentRequest) -> PaymentResult:
    client = _client(ctx)
    if payment.provider_payment_id:  # created before: hand out the same intent
        intent = await _call(client.v1.payment_intents.retrieve_async(payment.provider_payment_id))
        return _result(ctx, intent)
    params: dict[str, Any] = {
        "amount": payment.amount,
        "currency": payment.currency.lower(),
        "description": payment.description,
        "metadata": payment.metadata,  # opaque ids only
        "automatic_payment_methods": {"enabled": True},
    }
    options = {"idempotency_key": ctx.idempotency_key} if ctx.idempotency_key else {}
    intent = await _call(client.v1.payment_intents.create_async(params, options))  # type: ignore[arg-type]
    ctx.log.info("created PaymentIntent %s", intent.id)
    return _result(ctx, intent)


_REFUND_STATUS = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


@hookimpl
async def refund_payment(ctx: PluginContext, refund: RefundRequest) -> RefundResult:
    # The gateway passes the charge once it knows it, else the PaymentIntent.
    target = "charge" if refund.provider_payment_id.startswith("ch_") else "payment_intent"
    params: dict[str, Any] = {target: refund.provider_payment_id}
    if refund.amount is not None:
        params["amount"] = refund.amount
    options = {"idempotency_key": ctx.idempotency_key} if ctx.idempotency_key else {}
    created = await _call(_client(ctx).v1.refunds.create_async(params, options))  # type: ignore[arg-type]
    return RefundResult(
        provider_refund_id=created.id, status=_REFUND_STATUS.get(created.status, "pending")
    )


@hookimpl
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    config: StripeConfig = ctx.config
    if config.webhook_secret is None:
        raise NotConfigured("Set webhook_secret (whsec_…) to receive Stripe webhooks.")
    header = request.header("stripe-signature")
    if not header:
        raise WebhookRejected("missing Stripe-Signature")
    try:
        event = stripe.Webhook.construct_event(
            request.body.decode("utf-8"),
            header,
            config.webhook_secret.get_secret_value(),
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected("bad signature or payload") from exc
    facts = _facts(event.data.object.to_dict())
    facts["account"] = event.to_dict().get("account")  # set on Connect events
    return WebhookEvent(provider_event_id=event.id, type=event.type, data=facts)


def _facts(obj: dict[str, Any]) -> dict[str, Any]:
    """The ids, amounts and statuses an event carries; nothing else is kept."""
    error = obj.get("last_payment_error") or {}
    return {
        "object": obj.get("object"),
        "id": obj.get("id"),
        "payment_intent": obj.get("payment_intent"),
        "latest_charge": obj.get("latest_charge"),
        "amount_refunded": obj.get("amount_refunded"),
        "failure_code": error.get("decline_code") or error.get("code"),
    }


@hookimpl
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    data = event.data
    config: StripeConfig = ctx.config
    # A Connect endpoint hears every connected account: only this clinic's events count.
    if config.connect_account and data.get("account") != config.connect_account:
        ctx.record_event("event_skipped", details={"type": event.type, "reason": "other account"})
        return
    ids = (event.type, event.provider_event_id)
    update: ProviderUpdate | None = None
    if event.type == "payment_intent.succeeded":
        update = ProviderUpdate(
            data["id"],
            *ids,
            status=PaymentStatus.SUCCEEDED,
            provider_charge_id=data.get("latest_charge"),
        )
    elif event.type in ("payment_intent.payment_failed", "payment_intent.canceled"):
        update = ProviderUpdate(
            data["id"], *ids, status=PaymentStatus.FAILED, failure_code=data.get("failure_code")
        )
    elif event.type == "payment_intent.requires_action":
        update = ProviderUpdate(data["id"], *ids, status=PaymentStatus.REQUIRES_ACTION)
    elif event.type == "charge.refunded" and data.get("payment_intent"):
        update = ProviderUpdate(
            data["payment_intent"], *ids, amount_refunded=int(data["amount_refunded"] or 0)
        )
    if update is None:  # an event type payments do not act on: still on the record
        ctx.record_event("event_skipped", details={"type": event.type})
        return
    await apply(ctx, update)


def dev_fake_app() -> Starlette:
    """A local Stripe for the demo (PROVIDER_FAKES), mounted at /_fakes/pay_stripe."""
    from plugins.pay_stripe.fake import dev_fake_app as make

    return make()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Stripe."""
    from plugins.pay_stripe import fake

    config = {
        "api_base": f"{fakes_url.rstrip('/')}/pay_stripe",
        "publishable_key": fake.DEMO_PUBLISHABLE_KEY,
    }
    return config, {"secret_key": fake.DEMO_SECRET_KEY, "webhook_secret": fake.DEMO_WEBHOOK_SECRET}
