"""SendGrid email for a clinic: v3 Mail Send, and the signed Event Webhook.

The message body is built with the sendgrid package's `Mail` helper (the documented
v3 JSON) and posted through the gateway's shared async HTTP client, so every call
has the dispatch timeout and nothing blocks the event loop. Our message id and
clinic id travel as `custom_args`; SendGrid echoes them in every event, which is
how a delivery event finds its message.

Event Webhook: ECDSA signatures checked with the sendgrid package's `EventWebhook`
helper against the clinic's verification key, plus our own age limit on the
signed timestamp (SendGrid sets none), so an old captured batch cannot be replayed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from pydantic import BaseModel, Field, SecretStr
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import CustomArg, From, Mail, ReplyTo, To
from starlette.applications import Starlette

from gateway.integrations import (
    EmailMessage,
    Kind,
    NotConfigured,
    PluginContext,
    PluginDeclaration,
    ProviderRejected,
    SentEmail,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
    hookimpl,
)
from gateway.notifications import provider_http
from gateway.notifications.delivery import MESSAGE_TAG, ProviderEmailEvent, apply_provider_events
from gateway.notifications.models import EmailStatus
from plugins.mail_sendgrid import signing

PROVIDER = "SendGrid"


class SendGridConfig(BaseModel):
    api_key: SecretStr = Field(description="API key with the Mail Send permission (SG.…)")
    from_email: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Verified sender address, e.g. care@clinic.example",
    )
    webhook_public_key: str | None = Field(
        None, description="Event Webhook verification key (base64, from Mail Settings)"
    )
    webhook_max_age_seconds: int = Field(
        300, ge=30, le=3600, description="Refuse signed events older than this"
    )
    api_base: str = Field(
        "https://api.sendgrid.com", pattern=r"^https?://", description="SendGrid API base address"
    )


declaration = PluginDeclaration(
    name="mail_sendgrid",
    kind=Kind.EMAIL,
    label="SendGrid",
    description="Notifications through SendGrid; delivery status from its signed Event Webhook.",
    version="1.0.0",
    config_model=SendGridConfig,
    env_prefix="SENDGRID_",  # SENDGRID_API_KEY becomes the platform default
)


def _config(ctx: PluginContext) -> SendGridConfig:
    config: SendGridConfig = ctx.config
    return config


def _headers(ctx: PluginContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {_config(ctx).api_key.get_secret_value()}"}


def _url(ctx: PluginContext, path: str) -> str:
    return _config(ctx).api_base.rstrip("/") + path


def _first_error_field(body: bytes) -> str | None:
    """SendGrid names the offending field; its message may quote an address, so we keep the field."""
    try:
        errors = json.loads(body).get("errors") or []
        return str(errors[0].get("field") or "") or None
    except (ValueError, AttributeError, IndexError, TypeError):
        return None


async def _check_key(ctx: PluginContext) -> None:
    response = await provider_http.send(
        ctx.http, PROVIDER, "GET", _url(ctx, "/v3/scopes"), headers=_headers(ctx)
    )
    if response.status_code in (401, 403):
        raise NotConfigured("SendGrid refused the API key.")
    provider_http.check(response, PROVIDER)


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    config = _config(ctx)
    if config.webhook_public_key:
        try:
            EventWebhook(config.webhook_public_key)
        except (ValueError, UnsupportedAlgorithm):
            raise NotConfigured("webhook_public_key is not a SendGrid verification key.") from None
    await _check_key(ctx)


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    await _check_key(ctx)
    return "SendGrid reachable"


def _mail(config: SendGridConfig, message: EmailMessage) -> dict[str, Any]:
    mail = Mail(
        from_email=From(config.from_email, message.sender_name),
        to_emails=[To(address) for address in message.to],
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    if message.reply_to:
        mail.reply_to = ReplyTo(message.reply_to)
    if message.tags:
        mail.custom_arg = [CustomArg(key, value) for key, value in sorted(message.tags.items())]
    body: dict[str, Any] = mail.get()
    return body


@hookimpl
async def send_email(ctx: PluginContext, message: EmailMessage) -> SentEmail:
    response = await provider_http.send(
        ctx.http,
        PROVIDER,
        "POST",
        _url(ctx, "/v3/mail/send"),
        headers=_headers(ctx),
        json=_mail(_config(ctx), message),
    )
    provider_http.check(response, PROVIDER, _first_error_field(response.content))
    message_id = response.headers.get("x-message-id")
    if not message_id:
        raise ProviderRejected("SendGrid accepted the message without an id.")
    ctx.log.info("SendGrid accepted message %s", message_id)  # never recipients or content
    return SentEmail(provider_message_id=message_id)


# --- Event Webhook ------------------------------------------------------------------------

_STATUS = {
    "processed": EmailStatus.SENT,
    "delivered": EmailStatus.DELIVERED,
    "bounce": EmailStatus.BOUNCED,
    "blocked": EmailStatus.BOUNCED,
    "dropped": EmailStatus.DROPPED,
}


@hookimpl
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    config = _config(ctx)
    if not config.webhook_public_key:
        raise NotConfigured("Set webhook_public_key to receive SendGrid events.")
    signature = request.header(signing.SIGNATURE_HEADER)
    timestamp = request.header(signing.TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected("missing SendGrid signature headers")
    try:
        age = abs(time.time() - int(timestamp))
        body = request.body.decode("utf-8")
        valid = EventWebhook(config.webhook_public_key).verify_signature(body, signature, timestamp)
    except (ValueError, UnicodeDecodeError, UnsupportedAlgorithm) as exc:
        raise WebhookRejected("bad signature or timestamp") from exc
    if not valid:
        raise WebhookRejected("bad signature")
    if age > config.webhook_max_age_seconds:
        raise WebhookRejected("signed timestamp too old")
    try:
        batch = json.loads(body)
        events = [_facts(item) for item in batch]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WebhookRejected("malformed event batch") from exc
    # One POST is one batch; each event inside keeps its own id for deduplication.
    batch_id = f"batch:{timestamp}:{signature[:64]}"
    return WebhookEvent(provider_event_id=batch_id, type="event_batch", data={"events": events})


def _facts(item: dict[str, Any]) -> dict[str, Any]:
    """What an event says about delivery; the rest (IPs, user agents …) is not kept."""
    sg_message_id = str(item.get("sg_message_id") or "")
    return {
        "event_id": str(item["sg_event_id"]),
        "event": str(item["event"]),
        "message_id": item.get(MESSAGE_TAG),
        "provider_message_id": sg_message_id.split(".", 1)[0] or None,
        "recipient": item.get("email"),
        "reason": str(item.get("type") or item["event"])[:64],
    }


@hookimpl
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    await apply_provider_events(
        ctx,
        [
            ProviderEmailEvent(
                event_id=item["event_id"],
                status=_STATUS.get(item["event"]),
                message_id=item["message_id"],
                provider_message_id=item["provider_message_id"],
                recipient=item["recipient"],
                reason=f"SendGrid: {item['reason']}",
            )
            for item in event.data.get("events", [])
        ],
    )


def dev_fake_app() -> Starlette:
    """A local SendGrid for the demo (PROVIDER_FAKES), mounted at /_fakes/mail_sendgrid."""
    from plugins.mail_sendgrid.fake import dev_fake_app as make

    return make()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake SendGrid."""
    from plugins.mail_sendgrid import fake

    config = {
        "from_email": "care@bright-futures.example",
        "api_base": f"{fakes_url.rstrip('/')}/mail_sendgrid",
        "webhook_public_key": signing.public_key_b64(signing.load_key(fake.DEMO_SIGNING_KEY_PEM)),
    }
    return config, {"api_key": fake.DEMO_API_KEY}
