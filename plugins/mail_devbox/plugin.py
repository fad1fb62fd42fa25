"""The development mailbox as an email plugin: nothing leaves the machine.

A clinic (or a developer's own test clinic) can enable `mail_devbox` like any
email plugin; its messages are kept in the development mailbox directory and read
through the `devMailbox` GraphQL query. The file is named after the outbox row
(the idempotency key), so a retried delivery rewrites the same message.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import BaseModel, Field

from gateway.integrations import (
    EmailMessage,
    Kind,
    NotConfigured,
    PluginContext,
    PluginDeclaration,
    SentEmail,
    hookimpl,
)
from gateway.notifications.delivery import CLINIC_TAG
from gateway.notifications.mailbox import Mailbox, MailboxEntry


class DevboxConfig(BaseModel):
    directory: str = Field(
        "./var/mailbox", description="Where captured messages are written (DEV_MAILBOX_DIR)"
    )


declaration = PluginDeclaration(
    name="mail_devbox",
    kind=Kind.EMAIL,
    label="Development mailbox",
    description="Keeps emails in a local mailbox for developers instead of sending them.",
    version="1.0.0",
    config_model=DevboxConfig,
)


def _mailbox(ctx: PluginContext) -> Mailbox:
    config: DevboxConfig = ctx.config
    return Mailbox(config.directory)


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    mailbox = _mailbox(ctx)
    try:
        await asyncio.to_thread(mailbox.directory.mkdir, parents=True, exist_ok=True)
    except OSError:
        raise NotConfigured("The mailbox directory cannot be created.") from None


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    return "development mailbox"


@hookimpl
async def send_email(ctx: PluginContext, message: EmailMessage) -> SentEmail:
    key = ctx.idempotency_key or str(uuid.uuid4())
    entry = MailboxEntry(
        id=f"devbox-{key}",
        clinic_id=message.tags.get(CLINIC_TAG) or (str(ctx.clinic_id) if ctx.clinic_id else None),
        via="mail_devbox",
        to=list(message.to),
        subject=message.subject,
        text=message.text,
        html=message.html,
        sender=message.sender_name,
        reply_to=message.reply_to,
        tags=dict(message.tags),
    )
    await asyncio.to_thread(_mailbox(ctx).put, entry)
    return SentEmail(provider_message_id=entry.id)
