"""Mailgun email for a clinic: the Messages API, and signed delivery webhooks.

Sends through Mailgun's documented HTTP API (form fields, HTTP Basic `api:<key>`)
with the gateway's shared async client. Our message id and clinic id travel as
user variables (`v:` fields), which Mailgun echoes in every event.

Webhooks: HMAC-SHA256 of timestamp + token with the signing key, an age limit on
the timestamp, and replayed tokens refused: the token is the webhook's receipt
key, so the gateway's receipt table (in the database) remembers every token seen
and a replay changes nothing. Events are also deduplicated by their own id.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, Field, SecretStr
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
from plugins.mail_mailgun import signing

PROVIDER = "Mailgun"


class MailgunConfig(BaseModel):
    api_key: SecretStr = Field(description="Mailgun private API key")
    domain: str = Field(
        pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$", description="Sending domain, e.g. mg.clinic.example"
    )
    from_email: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", description="Sender address on the sending domain"
    )
    webhook_signing_key: SecretStr | None = Field(
        None, description="HTTP webhook signing key (Mailgun dashboard, Webhooks)"
    )
    webhook_max_age_seconds: int = Field(
        300, ge=30, le=3600, description="Refuse signed webhooks older than this"
    )
    api_base: str = Field(
        "https://api.mailgun.net",
        pattern=r"^https?://",
        description="Mailgun API base (https://api.eu.mailgun.net for EU domains)",
    )


declaration = PluginDeclaration(
    name="mail_mailgun",
    kind=Kind.EMAIL,
    label="Mailgun",
    description="Notifications through Mailgun; delivery status from its signed webhooks.",
    version="1.0.0",
    config_model=MailgunConfig,
    env_prefix="MAILGUN_",  # MAILGUN_API_KEY, MAILGUN_DOMAIN become platform defaults
)


def _config(ctx: PluginContext) -> MailgunConfig:
    config: MailgunConfig = ctx.config
    return config


def _auth(ctx: PluginContext) -> tuple[str, str]:
    return ("api", _config(ctx).api_key.get_secret_value())


def _url(ctx: PluginContext, path: str) -> str:
    return _config(ctx).api_base.rstrip("/") + path


async def _check_domain(ctx: PluginContext) -> None:
    config = _config(ctx)
    response = await provider_http.send(
        ctx.http, PROVIDER, "GET", _url(ctx, f"/v3/domains/{config.domain}"), auth=_auth(ctx)
    )
    if response.status_code in (401, 403):
        raise NotConfigured("Mailgun refused the API key.")
    if response.status_code == 404:
        raise NotConfigured("Mailgun does not know the sending domain.")
    provider_http.check(response, PROVIDER)


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await _check_domain(ctx)


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    await _check_domain(ctx)
    return "Mailgun reachable"


def _from(config: MailgunConfig, name: str | None) -> str:
    if not name:
        return config.from_email
    safe = name.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'"{safe}" <{config.from_email}>'


@hookimpl
async def send_email(ctx: PluginContext, message: EmailMessage) -> SentEmail:
    config = _config(ctx)
    form: dict[str, str | list[str]] = {
        "from": _from(config, message.sender_name),
        "to": list(message.to),
        "subject": message.subject,
        "text": message.text,
    }
    if message.html:
        form["html"] = message.html
    if message.reply_to:
        form["h:Reply-To"] = message.reply_to
    form.update({f"v:{key}": value for key, value in message.tags.items()})
    response = await provider_http.send(
        ctx.http,
        PROVIDER,
        "POST",
        _url(ctx, f"/v3/{config.domain}/messages"),
        auth=_auth(ctx),
        data=form,
    )
    provider_http.check(response, PROVIDER)
    try:
        message_id = str(response.json()["id"]).strip("<>")
    except (ValueError, KeyError, TypeError):
        raise ProviderRejected("Mailgun accepted the message without an id.") from None
    ctx.log.info("Mailgun accepted message %s", message_id)  # never recipients or content
    return SentEmail(provider_message_id=message_id)


# --- webhooks ----------------------------------------------------------------------------

# "failed" splits on severity: permanent is a bounce (or a drop when Mailgun suppressed it).
_DROP_REASONS = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint", "old"}


def _status(data: dict[str, Any]) -> EmailStatus | None:
    kind = data.get("event")
    if kind == "accepted":
        return EmailStatus.SENT
    if kind == "delivered":
        return EmailStatus.DELIVERED
    if kind == "rejected":
        return EmailStatus.DROPPED
    if kind == "failed" and data.get("severity") == "permanent":
        return EmailStatus.DROPPED if data.get("reason") in _DROP_REASONS else EmailStatus.BOUNCED
    return None  # temporary failures are retried by Mailgun; opens and clicks change nothing


@hookimpl
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    config = _config(ctx)
    if config.webhook_signing_key is None:
        raise NotConfigured("Set webhook_signing_key to receive Mailgun webhooks.")
    try:
        payload = json.loads(request.body)
        signed = payload["signature"]
        timestamp, token, given = (
            str(signed["timestamp"]),
            str(signed["token"]),
            str(signed["signature"]),
        )
        data = payload["event-data"]
        age = abs(time.time() - int(timestamp))
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookRejected("malformed Mailgun webhook") from exc
    if not signing.valid(config.webhook_signing_key.get_secret_value(), timestamp, token, given):
        raise WebhookRejected("bad signature")
    if age > config.webhook_max_age_seconds:
        raise WebhookRejected("signed timestamp too old")
    if not 16 <= len(token) <= 200:
        raise WebhookRejected("unexpected token")
    headers = (data.get("message") or {}).get("headers") or {}
    variables = data.get("user-variables") or {}
    status = _status(data)
    facts = {
        "event_id": str(data.get("id") or ""),
        "status": status.value if status else None,
        "message_id": variables.get(MESSAGE_TAG),
        "provider_message_id": str(headers.get("message-id") or "").strip("<>") or None,
        "recipient": data.get("recipient"),
        "reason": str(data.get("reason") or data.get("event") or "")[:64],
    }
    if not facts["event_id"]:
        raise WebhookRejected("event without an id")
    # The signed token is the receipt key: a replayed signature is refused as already seen.
    return WebhookEvent(provider_event_id=f"token:{token}", type=str(data.get("event")), data=facts)


@hookimpl
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    data = event.data
    await apply_provider_events(
        ctx,
        [
            ProviderEmailEvent(
                event_id=data["event_id"],
                status=EmailStatus(data["status"]) if data.get("status") else None,
                message_id=data.get("message_id"),
                provider_message_id=data.get("provider_message_id"),
                recipient=data.get("recipient"),
                reason=f"Mailgun: {data.get('reason')}",
            )
        ],
    )


def dev_fake_app() -> Starlette:
    """A local Mailgun for the demo (PROVIDER_FAKES), mounted at /_fakes/mail_mailgun."""
    from plugins.mail_mailgun.fake import dev_fake_app as make

    return make()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Mailgun."""
    from plugins.mail_mailgun import fake

    config = {
        "domain": fake.DEMO_DOMAIN,
        "from_email": f"care@{fake.DEMO_DOMAIN}",
        "api_base": f"{fakes_url.rstrip('/')}/mail_mailgun",
    }
    return config, {"api_key": fake.DEMO_API_KEY, "webhook_signing_key": fake.DEMO_SIGNING_KEY}
