"""Per-clinic enablement: enable, reconfigure, disable, test, list.

Only a clinic admin of that clinic or a platform admin may see or change a
clinic's integrations. Provider calls (validate, on_enable) happen before any
write, so a rejected configuration stores nothing. Secrets are write-only: the
views built here carry masks, never values.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.auth.permissions import require_clinic
from gateway.auth.principal import Principal
from gateway.db.models import Role
from gateway.db.types import utcnow
from gateway.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.integrations.circuit import CLOSED, Breaker
from gateway.integrations.dispatch import CallInfo, Target, invoke, require_hub
from gateway.integrations.errors import IntegrationError
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.manager import LoadedPlugin, PluginProblem
from gateway.integrations.models import Integration, IntegrationStatus
from gateway.services import audit
from gateway.services import clinics as clinic_service
from gateway.services.context import ServiceContext

log = logging.getLogger("santana.integrations")

MANAGERS = frozenset({Role.CLINIC_ADMIN, Role.PLATFORM_ADMIN})


@dataclass(frozen=True)
class IntegrationView:
    row: Integration
    plugin: LoadedPlugin | None
    secrets: list[dict[str, Any]]
    platform_fields: list[str]
    breaker: Breaker | None

    @property
    def circuit_state(self) -> str:
        return self.breaker.state if self.breaker else CLOSED


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    code: str | None
    message: str | None
    view: IntegrationView


# --- permissions -----------------------------------------------------------------------


def _manager(ctx: ServiceContext) -> Principal:
    principal = ctx.require_principal()
    if principal.role not in MANAGERS:
        raise Forbidden("Only clinic admins and platform admins manage integrations.")
    return principal


async def _clinic(ctx: ServiceContext, clinic_id: uuid.UUID | None) -> uuid.UUID:
    principal = _manager(ctx)
    if clinic_id is None:
        if principal.clinic_id is None:
            raise ValidationFailed(
                "Platform admins must say which clinic (clinicId).", field="clinicId"
            )
        clinic_id = principal.clinic_id
    require_clinic(principal, clinic_id)
    await clinic_service.get_clinic(ctx, clinic_id)  # exists, and visible to this caller
    return clinic_id


def _installed(hub: IntegrationHub, name: str) -> LoadedPlugin:
    plugin = hub.manager.get(name)
    if plugin is None:
        raise NotFound(f"No installed plugin is called {name!r}.", field="plugin")
    return plugin


def _who(ctx: ServiceContext) -> CallInfo:
    return CallInfo(
        actor_user_id=ctx.principal.user_id if ctx.principal else None, request_id=ctx.request_id
    )


def _record(
    ctx: ServiceContext, action: str, row: Integration, outcome: str = "success", **details: Any
) -> None:
    audit.record(
        ctx.db,
        action,
        clinic_id=row.clinic_id,
        actor_user_id=ctx.require_principal().user_id,
        target_type="integration",
        target_id=row.id,
        outcome=outcome,
        details={"plugin": row.plugin, "kind": row.kind, **details},
        request_id=ctx.request_id,
        ip=ctx.ip,
    )


# --- reads ------------------------------------------------------------------------------------


def available(ctx: ServiceContext) -> list[LoadedPlugin]:
    _manager(ctx)
    hub = require_hub(ctx)
    return sorted(hub.manager.plugins.values(), key=lambda p: (p.kind.value, p.name))


def problems(ctx: ServiceContext) -> list[PluginProblem]:
    if not ctx.require_principal().is_platform_admin:
        raise Forbidden("Only platform admins see plugin problems.")
    return list(require_hub(ctx).manager.problems)


async def list_for_clinic(ctx: ServiceContext, clinic_id: uuid.UUID) -> list[IntegrationView]:
    clinic_id = await _clinic(ctx, clinic_id)
    rows = await ctx.db.scalars(
        select(Integration)
        .where(Integration.clinic_id == clinic_id)
        .order_by(Integration.kind, Integration.plugin)
    )
    hub = require_hub(ctx)
    return [_view(hub, row) for row in rows]


def _view(hub: IntegrationHub, row: Integration) -> IntegrationView:
    plugin = hub.manager.get(row.plugin)
    if plugin is None:
        return IntegrationView(row, None, [], [], hub.breakers.peek(row.clinic_id, row.plugin))
    try:
        stored = hub.store.decrypt(row.secrets_encrypted)
    except ValueError:
        stored = {}
    return IntegrationView(
        row=row,
        plugin=plugin,
        secrets=hub.store.masked(plugin.declaration, stored),
        platform_fields=hub.store.platform_fields(plugin.declaration),
        breaker=hub.breakers.peek(row.clinic_id, row.plugin),
    )


async def _row(ctx: ServiceContext, clinic_id: uuid.UUID, plugin: str) -> Integration:
    row = await require_hub(ctx).row(ctx.db, clinic_id, plugin)
    if row is None:
        raise NotFound(f"{plugin!r} is not set up for this clinic.", field="plugin")
    return row


# --- writes --------------------------------------------------------------------------------


async def enable(
    ctx: ServiceContext,
    clinic_id: uuid.UUID | None,
    name: str,
    config: dict[str, Any] | None,
    secrets: dict[str, Any] | None,
) -> IntegrationView:
    clinic_id = await _clinic(ctx, clinic_id)
    hub = require_hub(ctx)
    plugin = _installed(hub, name)
    declaration = plugin.declaration
    new_config, new_secrets = hub.store.split_input(declaration, config, secrets)
    row = await hub.row(ctx.db, clinic_id, name)
    if row is not None and row.enabled:
        raise Conflict(
            f"{declaration.label} is already enabled; use updateIntegration.", field="plugin"
        )
    other = await hub.enabled_row(ctx.db, clinic_id, plugin.kind.value)
    if other is not None:
        raise Conflict(
            f"Another {plugin.kind.value} integration ({other.plugin}) is enabled; "
            "disable it first.",
            field="plugin",
            enabled=other.plugin,
        )
    # Re-enabling keeps what was stored; new values win.
    stored_config = dict(row.config or {}) if row else {}
    stored_secrets = hub.store.decrypt(row.secrets_encrypted) if row else {}
    merged_config = _apply(stored_config, new_config)
    merged_secrets = _apply(stored_secrets, new_secrets)
    hub.store.build(
        declaration, merged_config, merged_secrets
    )  # field errors before any provider call
    target = Target(clinic_id, plugin, merged_config, merged_secrets)
    hub.breakers.reset(clinic_id, name)
    await invoke(hub, target, "validate_config", {}, _who(ctx), probe=True)
    await invoke(hub, target, "on_enable", {}, _who(ctx), probe=True)
    if row is None:
        row = Integration(clinic_id=clinic_id, plugin=name, kind=plugin.kind.value)
        ctx.db.add(row)
    row.enabled = True
    row.config = merged_config
    row.secrets_encrypted = hub.store.encrypt(merged_secrets)
    row.status, row.last_error, row.last_checked_at = IntegrationStatus.ACTIVE, None, utcnow()
    row.updated_by = ctx.require_principal().user_id
    await ctx.db.flush()
    _record(
        ctx,
        "integration.enabled",
        row,
        config_fields=sorted(merged_config),
        secret_fields=sorted(merged_secrets),
    )
    return _view(hub, row)


async def update(
    ctx: ServiceContext,
    clinic_id: uuid.UUID | None,
    name: str,
    config: dict[str, Any] | None,
    secrets: dict[str, Any] | None,
) -> IntegrationView:
    """Change some fields; a null value clears a field. Enabled integrations are re-validated."""
    clinic_id = await _clinic(ctx, clinic_id)
    hub = require_hub(ctx)
    plugin = _installed(hub, name)
    row = await _row(ctx, clinic_id, name)
    changes, secret_changes = hub.store.split_input(plugin.declaration, config, secrets)
    merged_config = _apply(dict(row.config or {}), changes)
    merged_secrets = _apply(hub.store.decrypt(row.secrets_encrypted), secret_changes)
    hub.store.build(plugin.declaration, merged_config, merged_secrets)
    if row.enabled:
        hub.breakers.reset(clinic_id, name)
        await invoke(
            hub,
            Target(clinic_id, plugin, merged_config, merged_secrets),
            "validate_config",
            {},
            _who(ctx),
            probe=True,
        )
        row.status, row.last_error, row.last_checked_at = IntegrationStatus.ACTIVE, None, utcnow()
    row.config = merged_config
    row.secrets_encrypted = hub.store.encrypt(merged_secrets)
    row.updated_by = ctx.require_principal().user_id
    row.updated_at = utcnow()
    await ctx.db.flush()
    _record(
        ctx,
        "integration.reconfigured",
        row,
        config_fields=sorted(changes),
        secret_fields=sorted(secret_changes),
    )
    return _view(hub, row)


async def disable(ctx: ServiceContext, clinic_id: uuid.UUID | None, name: str) -> IntegrationView:
    clinic_id = await _clinic(ctx, clinic_id)
    hub = require_hub(ctx)
    row = await _row(ctx, clinic_id, name)
    if not row.enabled:
        return _view(hub, row)
    plugin = hub.manager.get(name)
    if plugin is not None:
        try:
            await invoke(hub, Target.from_row(hub, row), "on_disable", {}, _who(ctx), probe=True)
        except (
            IntegrationError
        ) as exc:  # a broken provider must not keep a clinic from switching it off
            log.warning("on_disable of %s failed for clinic %s: %s", name, clinic_id, exc.code)
    row.enabled = False
    row.status = IntegrationStatus.DISABLED
    row.updated_by = ctx.require_principal().user_id
    row.updated_at = utcnow()
    await ctx.db.flush()
    hub.breakers.reset(clinic_id, name)
    _record(ctx, "integration.disabled", row)
    return _view(hub, row)


async def test(ctx: ServiceContext, clinic_id: uuid.UUID | None, name: str) -> TestOutcome:
    """Run validate_config and health_check now, even if the circuit is open; record the result."""
    clinic_id = await _clinic(ctx, clinic_id)
    hub = require_hub(ctx)
    row = await _row(ctx, clinic_id, name)
    ok, code, message = True, None, None
    try:
        target = Target.from_row(hub, row)
        await invoke(hub, target, "validate_config", {}, _who(ctx), probe=True)
        message = await invoke(hub, target, "health_check", {}, _who(ctx), probe=True)
    except IntegrationError as exc:
        ok, code, message = False, exc.code, exc.message
    if row.enabled:
        row.status = IntegrationStatus.ACTIVE if ok else IntegrationStatus.ERROR
    row.last_error = None if ok else (message or "")[:500]
    row.last_checked_at = utcnow()
    await ctx.db.flush()
    _record(ctx, "integration.tested", row, outcome="success" if ok else "failure", code=code)
    return TestOutcome(
        ok=ok,
        code=code,
        message=message if isinstance(message, str) else None,
        view=_view(hub, row),
    )


def _apply(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(current)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
