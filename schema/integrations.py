"""GraphQL for the integration layer: installed plugins, a clinic's integrations, mutations.

Secrets are write-only: inputs accept them, outputs only say whether each is set
(a fixed mask). Only a clinic admin of that clinic or a platform admin gets here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from gateway.integrations import service
from gateway.integrations.config import config_schema
from gateway.integrations.manager import LoadedPlugin
from gateway.integrations.types import CONTRACT_VERSION
from schema.context import Info
from schema.ids import from_global_id, to_global_id
from schema.transactions import Transactional


@strawberry.enum(description="What an integration does for a clinic")
class IntegrationKind(Enum):
    EMR = "emr"
    PAYMENT = "payment"
    EMAIL = "email"
    STORAGE = "storage"


@strawberry.enum(
    description="closed: calls go out; open: paused after failures; half_open: one trial call"
)
class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@strawberry.type(description="An installed plugin a clinic may enable")
class AvailableIntegration:
    name: str
    kind: IntegrationKind
    label: str
    description: str
    version: str
    contract_version: str
    config_schema: JSON = strawberry.field(
        description="JSON Schema; secret fields carry `secret: true`"
    )
    secret_fields: list[str]
    source: str

    @classmethod
    def from_plugin(cls, plugin: LoadedPlugin) -> AvailableIntegration:
        d = plugin.declaration
        return cls(
            name=d.name,
            kind=IntegrationKind(d.kind.value),
            label=d.label,
            description=d.description,
            version=d.version,
            contract_version=d.contract,
            config_schema=cast(JSON, config_schema(d)),
            secret_fields=d.secret_fields(),
            source=plugin.source,
        )


@strawberry.type(description="A plugin that was found but not loaded (platform admins)")
class PluginProblem:
    name: str
    source: str
    reason: str


@strawberry.type(description="A secret field: whether it is set, never its value")
class MaskedSecret:
    name: str
    is_set: bool
    masked: str | None
    source: str | None = strawberry.field(
        description="clinic | platform (an operator default) | null"
    )


@strawberry.type
class Circuit:
    state: CircuitState
    consecutive_failures: int
    retry_in_seconds: float | None
    last_error_code: str | None
    last_failure_at: datetime | None


@strawberry.type(description="One plugin's setup for one clinic")
class ClinicIntegration:
    id: strawberry.ID
    plugin: str
    kind: IntegrationKind
    label: str
    installed: bool = strawberry.field(description="False when the plugin is no longer installed")
    enabled: bool
    status: str = strawberry.field(description="active | error | disabled")
    config: JSON = strawberry.field(description="The clinic's non-secret settings")
    platform_defaults: list[str] = strawberry.field(
        description="Fields an operator default may fill"
    )
    secrets: list[MaskedSecret]
    last_error: str | None
    last_checked_at: datetime | None
    updated_at: datetime
    updated_by_id: strawberry.ID | None
    circuit: Circuit

    @classmethod
    def from_view(cls, view: service.IntegrationView) -> ClinicIntegration:
        row, breaker = view.row, view.breaker
        last_error = row.last_error
        if breaker is not None and breaker.last_error and breaker.failures:
            last_error = breaker.last_error  # newer than the stored one
        return cls(
            id=to_global_id("Integration", row.id),
            plugin=row.plugin,
            kind=IntegrationKind(row.kind),
            label=view.plugin.declaration.label if view.plugin else row.plugin,
            installed=view.plugin is not None,
            enabled=row.enabled,
            status=row.status,
            config=cast(JSON, dict(row.config or {})),
            platform_defaults=view.platform_fields,
            secrets=[MaskedSecret(**s) for s in view.secrets],
            last_error=last_error,
            last_checked_at=row.last_checked_at,
            updated_at=row.updated_at,
            updated_by_id=to_global_id("User", row.updated_by) if row.updated_by else None,
            circuit=Circuit(
                state=CircuitState(view.circuit_state),
                consecutive_failures=breaker.failures if breaker else 0,
                retry_in_seconds=round(breaker.retry_in(), 1)
                if breaker and breaker.opened_at
                else None,
                last_error_code=breaker.last_error_code if breaker else None,
                last_failure_at=breaker.last_failure_wall if breaker else None,
            ),
        )


@strawberry.type
class IntegrationTestResult:
    ok: bool
    code: str | None
    message: str | None
    integration: ClinicIntegration


ClinicIdArg = Annotated[
    strawberry.ID | None,
    strawberry.argument(description="Platform admins: which clinic (default: your own)"),
]


def _clinic(clinic_id: str | None) -> uuid.UUID | None:
    return from_global_id(clinic_id, "Clinic", "clinicId") if clinic_id else None


async def clinic_integrations(info: Info, clinic_row_id: uuid.UUID) -> list[ClinicIntegration]:
    """Resolver of Clinic.integrations."""
    return [
        ClinicIntegration.from_view(v)
        for v in await service.list_for_clinic(info.context, clinic_row_id)
    ]


@strawberry.type
class IntegrationQueries:
    @strawberry.field(description="Installed plugins a clinic may enable, with their config schema")
    def available_integrations(self, info: Info) -> list[AvailableIntegration]:
        return [AvailableIntegration.from_plugin(p) for p in service.available(info.context)]

    @strawberry.field(description="Plugins that failed to load, and why (platform admins)")
    def plugin_problems(self, info: Info) -> list[PluginProblem]:
        return [
            PluginProblem(name=p.name, source=p.source, reason=p.reason)
            for p in service.problems(info.context)
        ]

    @strawberry.field(description="The plugin contract version this gateway speaks")
    def integration_contract_version(self) -> str:
        return CONTRACT_VERSION


@strawberry.type
class IntegrationMutations:
    @strawberry.mutation(
        extensions=[Transactional()], description="Enable a plugin for a clinic (validated first)"
    )
    async def enable_integration(
        self,
        info: Info,
        plugin: str,
        config: JSON | None = None,
        secrets: Annotated[JSON | None, strawberry.argument(description="Write-only")] = None,
        clinic_id: ClinicIdArg = None,
    ) -> ClinicIntegration:
        view = await service.enable(
            info.context, _clinic(clinic_id), plugin, _obj(config), _obj(secrets)
        )
        return ClinicIntegration.from_view(view)

    @strawberry.mutation(
        extensions=[Transactional()], description="Change some settings; null clears a field"
    )
    async def update_integration(
        self,
        info: Info,
        plugin: str,
        config: JSON | None = None,
        secrets: Annotated[JSON | None, strawberry.argument(description="Write-only")] = None,
        clinic_id: ClinicIdArg = None,
    ) -> ClinicIntegration:
        view = await service.update(
            info.context, _clinic(clinic_id), plugin, _obj(config), _obj(secrets)
        )
        return ClinicIntegration.from_view(view)

    @strawberry.mutation(
        extensions=[Transactional()], description="Stop using a plugin (its settings are kept)"
    )
    async def disable_integration(
        self, info: Info, plugin: str, clinic_id: ClinicIdArg = None
    ) -> ClinicIntegration:
        return ClinicIntegration.from_view(
            await service.disable(info.context, _clinic(clinic_id), plugin)
        )

    @strawberry.mutation(
        extensions=[Transactional()], description="Run the plugin's validation and health check now"
    )
    async def test_integration(
        self, info: Info, plugin: str, clinic_id: ClinicIdArg = None
    ) -> IntegrationTestResult:
        outcome = await service.test(info.context, _clinic(clinic_id), plugin)
        return IntegrationTestResult(
            ok=outcome.ok,
            code=outcome.code,
            message=outcome.message,
            integration=ClinicIntegration.from_view(outcome.view),
        )


def _obj(value: object) -> dict[str, object] | None:
    from gateway.errors import ValidationFailed

    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationFailed("`config` and `secrets` must be JSON objects.")
    return value
