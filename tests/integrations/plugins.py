"""Plugins used by the integration tests: well-behaved ones, and ones that fail on purpose."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass

from pydantic import BaseModel, SecretStr

from gateway.integrations import (
    EmailMessage,
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
    SentEmail,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
    hookimpl,
)


class MailConfig(BaseModel):
    sender: str
    api_key: SecretStr
    webhook_secret: SecretStr | None = None


@dataclass
class Sent:
    clinic_id: uuid.UUID
    api_key: str
    message: EmailMessage
    idempotency_key: str | None


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class MemoryMail:
    """An email 'provider' in memory. Keys start with 'key-'; `down`/`revoked` simulate outages."""

    def __init__(self, name: str, label: str | None = None) -> None:
        self.declaration = PluginDeclaration(
            name=name,
            kind=Kind.EMAIL,
            label=label or name.replace("_", " ").title(),
            config_model=MailConfig,
            env_prefix=f"{name.upper()}_",
        )
        self.sent: list[Sent] = []
        self.handled: list[str] = []
        self.calls = 0
        self.down = False
        self.revoked = False
        self.fail_handling = False
        self.send_delay = 0.0  # seconds a send takes, like a real provider's round trip
        self.delivered_keys: set[str] = set()

    def _check(self, ctx: PluginContext) -> None:
        self.calls += 1
        if self.down:
            raise ProviderUnavailable("provider is down")
        if self.revoked or not ctx.config.api_key.get_secret_value().startswith("key-"):
            raise NotConfigured("The provider refused the API key.")

    @hookimpl
    async def validate_config(self, ctx: PluginContext) -> None:
        self._check(ctx)

    @hookimpl
    async def health_check(self, ctx: PluginContext) -> str:
        self._check(ctx)
        return "all good"

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        self._check(ctx)
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        if message.to == ["reject@example.test"]:
            raise ProviderRejected("The provider refused that address.")
        # A real provider dedupes on the idempotency key; so does this one.
        if ctx.idempotency_key and ctx.idempotency_key in self.delivered_keys:
            return SentEmail(provider_message_id=f"dup-{ctx.idempotency_key}")
        if ctx.idempotency_key:
            self.delivered_keys.add(ctx.idempotency_key)
        self.sent.append(
            Sent(ctx.clinic_id, ctx.config.api_key.get_secret_value(), message, ctx.idempotency_key)
        )
        return SentEmail(provider_message_id=f"{self.declaration.name}-{len(self.sent)}")

    @hookimpl
    async def verify_webhook(self, ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
        secret = ctx.config.webhook_secret
        if secret is None:
            raise NotConfigured("no webhook secret")
        given = request.header("x-signature") or ""
        if not hmac.compare_digest(sign(request.body, secret.get_secret_value()), given):
            raise WebhookRejected("bad signature")
        data = json.loads(request.body)
        return WebhookEvent(provider_event_id=data["id"], type=data["type"], data={})

    @hookimpl
    async def handle_webhook(self, ctx: PluginContext, event: WebhookEvent) -> None:
        if self.fail_handling:
            raise ProviderUnavailable("could not apply the event")
        ctx.record_event("delivered", target_id=event.provider_event_id)
        self.handled.append(event.provider_event_id)


class RaisingMail(MemoryMail):
    """Validates fine, then crashes on every send with a message quoting its own key."""

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        self.calls += 1
        raise RuntimeError(
            f"boom: auth header Bearer {ctx.config.api_key.get_secret_value()} rejected"
        )


class HangingMail(MemoryMail):
    """Validates fine, then never answers a send."""

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        self.calls += 1
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class PayConfig(BaseModel):
    account: str
    secret_key: SecretStr


class MemoryPay:
    """A payment plugin, so a clinic can have two kinds enabled at once."""

    declaration = PluginDeclaration(
        name="pay_memory", kind=Kind.PAYMENT, label="Memory Pay", config_model=PayConfig
    )

    @hookimpl
    async def validate_config(self, ctx: PluginContext) -> None:
        return None

    @hookimpl
    async def health_check(self, ctx: PluginContext) -> str:
        return "ok"

    @hookimpl
    async def create_payment(self, ctx: PluginContext, payment: PaymentRequest) -> PaymentResult:
        return PaymentResult(provider_payment_id=f"pay-{payment.reference}", status="pending")

    @hookimpl
    async def refund_payment(self, ctx: PluginContext, refund: RefundRequest) -> RefundResult:
        return RefundResult(
            provider_refund_id=f"re-{refund.provider_payment_id}", status="succeeded"
        )
