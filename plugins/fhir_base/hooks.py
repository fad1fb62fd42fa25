"""The EMR hook implementations of every FHIR plugin: pluggy wiring onto `operations`.

A vendor plugin module re-exports them, since pluggy collects hookimpls from the
registered object (the module). The vendor named in messages is its config's.
"""

from __future__ import annotations

from gateway.integrations import (
    AppointmentPush,
    DocumentPush,
    EmrPatient,
    PatientQuery,
    PluginContext,
    PushedAppointment,
    PushedDocument,
    hookimpl,
)
from plugins.fhir_base import operations
from plugins.fhir_base.config import FhirConfig


def _vendor(ctx: PluginContext) -> str:
    config: FhirConfig = ctx.config
    return config.vendor


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await operations.validate_config(ctx, _vendor(ctx))


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    return await operations.health_check(ctx, _vendor(ctx))


@hookimpl
async def search_patients(ctx: PluginContext, query: PatientQuery) -> list[EmrPatient]:
    return await operations.search_patients(ctx, _vendor(ctx), query)


@hookimpl
async def get_patient(ctx: PluginContext, emr_id: str) -> EmrPatient | None:
    return await operations.get_patient(ctx, _vendor(ctx), emr_id)


@hookimpl
async def push_appointment(ctx: PluginContext, appointment: AppointmentPush) -> PushedAppointment:
    return await operations.push_appointment(ctx, _vendor(ctx), appointment)


@hookimpl
async def push_document(ctx: PluginContext, document: DocumentPush) -> PushedDocument:
    return await operations.push_document(ctx, _vendor(ctx), document)
