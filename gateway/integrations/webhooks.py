"""POST /webhooks/{clinic}/{plugin}: verified, deduplicated inbound provider events.

The raw body and headers go to the plugin's `verify_webhook` with that clinic's
configuration (its own webhook secret). A bad signature is a 400 and nothing is
stored. A verified event is recorded under a unique (clinic, plugin, provider
event id) key in the same transaction as the plugin's `handle_webhook` effect,
so a redelivered event changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.db.models import Clinic
from gateway.db.tenancy import TenantScope
from gateway.integrations.dispatch import CallInfo, Target, invoke
from gateway.integrations.errors import IntegrationError, WebhookRejected
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import WebhookReceipt
from gateway.integrations.types import WebhookEvent, WebhookRequest

log = logging.getLogger("santana.webhooks")


def _reply(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error" if status >= 400 else "ok", "message": message, **extra},
        status_code=status,
    )


async def _clinic_id(hub: IntegrationHub, ref: str) -> uuid.UUID | None:
    """Clinics are addressed by id or slug (the URL a provider's dashboard holds)."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    async with hub.database.session(TenantScope.cross_clinic()) as db:
        return await db.scalar(select(Clinic.id).where(Clinic.slug == ref))


async def receive(request: Request) -> JSONResponse:
    hub: IntegrationHub = request.app.state.integrations
    request_id = request.scope.get("state", {}).get("request_id")
    plugin_name = request.path_params["plugin"]
    clinic_id = await _clinic_id(hub, request.path_params["clinic"])
    body = await request.body()
    if len(body) > hub.settings.webhook_max_body_bytes:
        return _reply(413, "Payload too large.")
    if clinic_id is None:
        return _reply(404, "No such webhook endpoint.")
    scope = TenantScope.clinic(clinic_id)
    async with hub.database.session(scope) as db:
        row = await hub.row(db, clinic_id, plugin_name)
    plugin = hub.manager.get(plugin_name)
    # Same answer whether the clinic, the plugin or its enablement is missing.
    if row is None or not row.enabled or plugin is None or "verify_webhook" not in plugin.hooks:
        return _reply(404, "No such webhook endpoint.")
    who = CallInfo(request_id=request_id)
    inbound = WebhookRequest(body=body, headers={k.lower(): v for k, v in request.headers.items()})
    try:
        target = Target.from_row(hub, row)
        event: WebhookEvent = await invoke(hub, target, "verify_webhook", {"request": inbound}, who)
    except WebhookRejected:
        log.info("webhook for %s/%s rejected: signature or payload invalid", clinic_id, plugin_name)
        return _reply(400, "Webhook signature or payload is invalid.")
    except IntegrationError as exc:  # the provider will retry
        return _reply(503, "Webhook could not be verified right now.", code=exc.code)

    async with hub.database.session(scope) as db:
        return await _record_and_apply(hub, db, target, event, who)


async def _record_and_apply(
    hub: IntegrationHub, db: AsyncSession, target: Target, event: WebhookEvent, who: CallInfo
) -> JSONResponse:
    plugin_name = target.plugin.name
    seen = await db.scalar(
        select(WebhookReceipt.id).where(
            WebhookReceipt.clinic_id == target.clinic_id,
            WebhookReceipt.plugin == plugin_name,
            WebhookReceipt.provider_event_id == event.provider_event_id,
        )
    )
    if seen is not None:
        return _reply(200, "Already processed.", result="duplicate")
    db.add(
        WebhookReceipt(
            clinic_id=target.clinic_id,
            plugin=plugin_name,
            provider_event_id=event.provider_event_id,
            event_type=event.type,
        )
    )
    try:
        await db.flush()  # a concurrent redelivery loses here, before any effect
    except IntegrityError:
        await db.rollback()
        return _reply(200, "Already processed.", result="duplicate")
    try:
        await invoke(hub, target, "handle_webhook", {"event": event}, who, hook_db=db)
        await db.commit()
    except IntegrationError as exc:
        await db.rollback()  # no receipt either: the provider's retry will apply the event
        return _reply(503, "Webhook could not be processed right now.", code=exc.code)
    except IntegrityError:
        await db.rollback()  # a concurrent delivery committed first
        return _reply(200, "Already processed.", result="duplicate")
    return _reply(200, "Processed.", result="processed")
