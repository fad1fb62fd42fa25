"""The plugin: declaration, config schema and hooks. The entry point loads this module.

Relay wire API (what `fake.py` implements):
    GET  /v1/account   Bearer token -> 200 {"sender": ...} | 401
    GET  /v1/health                  -> 200 {"status": "ok"}
    POST /v1/messages  Bearer token, Idempotency-Key -> 202 {"id": ...} | 4xx | 5xx
"""

from __future__ import annotations

import json

import httpx
from pydantic import BaseModel, Field, SecretStr

from gateway.integrations import (
    EmailMessage,
    Kind,
    NotConfigured,
    PluginContext,
    PluginDeclaration,
    ProviderRejected,
    ProviderUnavailable,
    SentEmail,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
    hookimpl,
)
from santana_example_mail import signing


class RelayConfig(BaseModel):
    endpoint: str = Field(pattern=r"^https?://", description="Base URL of the relay API")
    from_address: str = Field(description="Sender address, e.g. clinic@mail.example")
    api_token: SecretStr = Field(description="Relay API token")
    webhook_secret: SecretStr | None = Field(None, description="Signs delivery webhooks")


declaration = PluginDeclaration(
    name="example_mail",
    kind=Kind.EMAIL,
    label="Example Relay Mail",
    description="Sends email through an HTTP relay; verifies its signed delivery webhooks.",
    version="0.1.0",
    config_model=RelayConfig,
    env_prefix="EXAMPLE_MAIL_",  # EXAMPLE_MAIL_ENDPOINT etc. become platform defaults
)


def _config(ctx: PluginContext) -> RelayConfig:
    config: RelayConfig = ctx.config
    return config


async def _request(ctx: PluginContext, method: str, path: str, **kwargs: object) -> httpx.Response:
    config = _config(ctx)
    headers = {"Authorization": f"Bearer {config.api_token.get_secret_value()}"}
    if ctx.idempotency_key:
        headers["Idempotency-Key"] = ctx.idempotency_key
    try:
        response = await ctx.http.request(
            method, config.endpoint.rstrip("/") + path, headers=headers, **kwargs
        )  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Relay unreachable ({type(exc).__name__}).") from None
    if response.status_code in (401, 403):
        raise NotConfigured("The relay refused the API token.")
    if response.status_code >= 500:
        raise ProviderUnavailable(f"Relay error {response.status_code}.")
    if response.status_code >= 400:
        raise ProviderRejected(f"Relay rejected the request ({response.status_code}).")
    return response


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await _request(ctx, "GET", "/v1/account")


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    await _request(ctx, "GET", "/v1/health")
    return "relay reachable"


@hookimpl
async def send_email(ctx: PluginContext, message: EmailMessage) -> SentEmail:
    config = _config(ctx)
    payload = {"from": config.from_address, **message.model_dump(exclude_none=True)}
    response = await _request(ctx, "POST", "/v1/messages", json=payload)
    ctx.log.info("relay accepted a message")  # never the recipients or content
    return SentEmail(provider_message_id=str(response.json()["id"]))


@hookimpl
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    secret = _config(ctx).webhook_secret
    if secret is None:
        raise NotConfigured("Set webhook_secret to receive delivery webhooks.")
    if not signing.verify(request.body, request.header(signing.HEADER), secret.get_secret_value()):
        raise WebhookRejected("bad signature")
    try:
        data = json.loads(request.body)
        return WebhookEvent(
            provider_event_id=str(data["id"]),
            type=str(data["type"]),
            data={"message_id": str(data.get("message_id", ""))},
        )
    except (ValueError, KeyError) as exc:
        raise WebhookRejected("malformed payload") from exc


@hookimpl
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    # The effect is recorded in the same transaction as the event itself.
    ctx.record_event(
        "delivery_status", target_id=event.data.get("message_id"), details={"type": event.type}
    )
