"""Calling a clinic's plugin: timeout, typed errors, circuit breaker, audit.

`dispatch(ctx, clinic_id, kind, hook, **args)` is what services use. It picks the
clinic's enabled plugin of that kind and calls only that plugin's hook. Whatever
the plugin does (raise, hang, return junk), the caller gets an IntegrationError
with a code, the clinic's secrets are redacted from it, and nothing else in the
request is affected. Calls whose hook discloses patient data are audited in a
transaction of their own (the disclosure happened even if the caller rolls back).

On SQLite, dispatch before writing in the request (or queue through the outbox):
the audit write needs the single write lock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.tenancy import TenantScope
from gateway.errors import ValidationFailed
from gateway.events import EventContext
from gateway.integrations.config import secret_values
from gateway.integrations.errors import (
    CircuitOpen,
    IntegrationError,
    IntegrationTimeout,
    NotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
    redact,
    redacted_error,
)
from gateway.integrations.hookspecs import HOOKS
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.manager import LoadedPlugin
from gateway.integrations.models import Integration
from gateway.integrations.types import Kind, PluginContext, _RedactingLogger
from gateway.services import audit
from gateway.services.context import ServiceContext

log = logging.getLogger("santana.integrations")


@dataclass(frozen=True)
class Target:
    """One plugin with one clinic's (decrypted) configuration."""

    clinic_id: uuid.UUID
    plugin: LoadedPlugin
    config: dict[str, Any]
    secrets: dict[str, str]

    @classmethod
    def from_row(cls, hub: IntegrationHub, row: Integration) -> Target:
        plugin = hub.manager.get(row.plugin)
        if plugin is None:
            raise NotConfigured(
                f"The {row.plugin!r} plugin is enabled but not installed on this gateway.",
                plugin=row.plugin,
            )
        try:
            secrets = hub.store.decrypt(row.secrets_encrypted)
        except ValueError:
            raise NotConfigured(
                f"The stored secrets of {plugin.declaration.label} cannot be decrypted; "
                "enter them again.",
                plugin=row.plugin,
            ) from None
        return cls(
            clinic_id=row.clinic_id, plugin=plugin, config=dict(row.config or {}), secrets=secrets
        )


@dataclass(frozen=True)
class CallInfo:
    """Who caused a call, for the audit log and the provider's idempotency."""

    actor_user_id: uuid.UUID | None = None
    request_id: str | None = None
    idempotency_key: str | None = None


async def dispatch(
    ctx: ServiceContext,
    clinic_id: uuid.UUID,
    kind: Kind | str,
    hook: str,
    *,
    idempotency_key: str | None = None,
    **args: Any,
) -> Any:
    """Call `hook` on the clinic's enabled `kind` plugin, on behalf of the request's caller."""
    hub = require_hub(ctx)
    who = CallInfo(
        actor_user_id=ctx.principal.user_id if ctx.principal else None,
        request_id=ctx.request_id,
        idempotency_key=idempotency_key,
    )
    return await call(hub, ctx.db, clinic_id, Kind(kind), hook, args, who)


def require_hub(ctx: ServiceContext) -> IntegrationHub:
    hub = getattr(ctx, "integrations", None)
    if hub is None:
        raise NotConfigured("Integrations are not available in this process.")
    return hub  # type: ignore[no-any-return]


async def call(
    hub: IntegrationHub,
    db: AsyncSession,
    clinic_id: uuid.UUID,
    kind: Kind,
    hook: str,
    args: dict[str, Any],
    who: CallInfo = CallInfo(),
    *,
    audit_db: AsyncSession | None = None,
) -> Any:
    info = HOOKS.get(hook)
    if info is None or info.kind not in (None, kind):
        raise ValueError(f"{hook!r} is not a hook of kind {kind.value!r}")  # a bug in the caller
    row = await hub.enabled_row(db, clinic_id, kind.value)
    if row is None:
        raise NotConfigured(
            f"No {kind.value} integration is enabled for this clinic.", kind=kind.value
        )
    return await invoke(hub, Target.from_row(hub, row), hook, args, who, audit_db=audit_db)


async def invoke(
    hub: IntegrationHub,
    target: Target,
    hook: str,
    args: dict[str, Any],
    who: CallInfo = CallInfo(),
    *,
    audit_db: AsyncSession | None = None,
    probe: bool = False,
    hook_db: AsyncSession | None = None,
) -> Any:
    """Run one hook of one plugin for one clinic. `probe` bypasses an open circuit (admin tests)."""
    plugin, declaration = target.plugin, target.plugin.declaration
    breaker = hub.breakers.get(target.clinic_id, plugin.name)
    if not probe and not breaker.allow():
        raise CircuitOpen(
            f"{declaration.label} is paused after repeated failures; "
            f"retry in {breaker.retry_in():.0f}s.",
            plugin=plugin.name,
            circuit="open",
            retryInSeconds=round(breaker.retry_in(), 1),
        )
    known_secrets = list(target.secrets.values())
    function = hub.manager.implementation(plugin.name, hook)
    if function is None:  # an optional hook the plugin does not implement
        breaker.release()
        if HOOKS[hook].required:
            raise NotConfigured(
                f"{declaration.label} does not implement {hook}.", plugin=plugin.name
            )
        return None
    error: IntegrationError
    try:
        model = hub.store.build(declaration, target.config, target.secrets)
    except ValidationFailed as exc:
        error = NotConfigured(exc.message, plugin=plugin.name, **exc.extensions)
    else:
        known_secrets += secret_values(declaration, model)
        context = PluginContext(
            clinic_id=target.clinic_id,
            plugin=plugin.name,
            config=model,
            http=hub.http,
            log=_RedactingLogger(
                logging.getLogger(f"santana.plugins.{plugin.name}"), known_secrets
            ),
            idempotency_key=who.idempotency_key,
            db=hook_db,
            actor_user_id=who.actor_user_id,
            events=None if hook_db is None else _event_context(hub, hook_db, who),
        )
        limit = hub.settings.integration_timeout_seconds
        try:
            result = await asyncio.wait_for(function(ctx=context, **args), limit)
        except TimeoutError:
            error = IntegrationTimeout(
                f"{declaration.label} did not answer within {limit:g}s.", plugin=plugin.name
            )
        except IntegrationError as exc:
            error = exc
        except WebhookRejected:
            breaker.success()  # the plugin works; the request was bad
            raise
        except asyncio.CancelledError:
            breaker.release()
            raise
        except (
            Exception
        ) as exc:  # a plugin bug or an SDK error: the caller still gets a typed error
            log.warning(
                "plugin %s %s raised %s: %s",
                plugin.name,
                hook,
                type(exc).__name__,
                redact(str(exc), known_secrets),
            )
            error = ProviderUnavailable(
                f"{declaration.label} failed ({type(exc).__name__}).", plugin=plugin.name
            )
        else:
            expected = HOOKS[hook].returns
            if expected is None or isinstance(result, expected):
                breaker.success()
                await _audit(hub, target, hook, who, None, audit_db)
                return result
            error = ProviderUnavailable(
                f"{declaration.label} returned {type(result).__name__} from {hook}, "
                f"expected {expected.__name__}.",
                plugin=plugin.name,
            )
    error = redacted_error(error, known_secrets, plugin=plugin.name)
    if error.counts_as_failure:
        breaker.failure(error.code, error.message)
    elif isinstance(error, ProviderRejected):
        breaker.success()
    else:
        breaker.release()
    log.warning(
        "integration call failed: clinic=%s plugin=%s hook=%s code=%s: %s",
        target.clinic_id,
        plugin.name,
        hook,
        error.code,
        error.message,
    )
    await _audit(hub, target, hook, who, error, audit_db)
    raise error


def _event_context(hub: IntegrationHub, db: AsyncSession, who: CallInfo) -> EventContext:
    """Lets handle_webhook emit domain events that commit with the event's receipt."""
    return EventContext(
        db=db,
        cipher=hub.cipher,
        settings=hub.settings,
        hub=hub,
        actor_user_id=who.actor_user_id,
        request_id=who.request_id,
    )


async def _audit(
    hub: IntegrationHub,
    target: Target,
    hook: str,
    who: CallInfo,
    error: IntegrationError | None,
    audit_db: AsyncSession | None,
) -> None:
    if not HOOKS[hook].discloses_phi:
        return
    fields: dict[str, Any] = {
        "clinic_id": target.clinic_id,
        "actor_user_id": who.actor_user_id,
        "target_type": "integration",
        "target_id": target.plugin.name,
        "outcome": "failure" if error else "success",
        "details": {
            "plugin": target.plugin.name,
            "hook": hook,
            "code": error.code if error else None,
            "idempotency_key": who.idempotency_key,
        },
        "request_id": who.request_id,
    }
    if audit_db is not None:
        audit.record(audit_db, "integration.call", **fields)
        return
    async with hub.database.transaction(TenantScope.clinic(target.clinic_id)) as db:
        audit.record(db, "integration.call", **fields)
