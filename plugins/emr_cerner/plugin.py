"""Oracle Health (Cerner Millennium) over FHIR R4: the same operations as Epic.

`open_sandbox` connects without credentials, the way Oracle Health's open
sandbox endpoint works: reads only, every push is refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.applications import Starlette

from gateway.integrations import (
    AppointmentPush,
    DocumentPush,
    EmrPatient,
    Kind,
    PatientQuery,
    PluginContext,
    PluginDeclaration,
    PushedAppointment,
    PushedDocument,
    hookimpl,
)
from plugins.fhir_base import operations
from plugins.fhir_base.config import FhirConfig

VENDOR = "Oracle Health"


class CernerConfig(FhirConfig):
    open_sandbox: bool = Field(
        False, description="Open (no-auth) endpoint: read-only, for trying the integration"
    )


declaration = PluginDeclaration(
    name="emr_cerner",
    kind=Kind.EMR,
    label="Oracle Health (Cerner)",
    description="Oracle Health FHIR R4: find and import patients, push counseling appointments.",
    version="1.0.0",
    config_model=CernerConfig,
    env_prefix="CERNER_",
)


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    await operations.validate_config(ctx, VENDOR)


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    return await operations.health_check(ctx, VENDOR)


@hookimpl
async def search_patients(ctx: PluginContext, query: PatientQuery) -> list[EmrPatient]:
    return await operations.search_patients(ctx, VENDOR, query)


@hookimpl
async def get_patient(ctx: PluginContext, emr_id: str) -> EmrPatient | None:
    return await operations.get_patient(ctx, VENDOR, emr_id)


@hookimpl
async def push_appointment(ctx: PluginContext, appointment: AppointmentPush) -> PushedAppointment:
    return await operations.push_appointment(ctx, VENDOR, appointment)


@hookimpl
async def push_document(ctx: PluginContext, document: DocumentPush) -> PushedDocument:
    return await operations.push_document(ctx, VENDOR, document)


def dev_fake_app() -> Starlette:
    """A local Oracle Health for the demo (PROVIDER_FAKES), mounted at /_fakes/emr_cerner."""
    from plugins.fhir_base import demo_keys
    from plugins.fhir_base.fake import FakeFhir

    fake = FakeFhir(vendor=VENDOR)
    fake.register_private_key(
        demo_keys.DEMO_CERNER_CLIENT_ID,
        demo_keys.DEMO_CERNER_PRIVATE_KEY,
        demo_keys.DEMO_CERNER_KEY_ID,
    )
    return fake.app()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Oracle Health (ES384 key), pushes on."""
    from plugins.fhir_base import demo_keys

    config = {
        "base_url": f"{fakes_url.rstrip('/')}/emr_cerner",
        "client_id": demo_keys.DEMO_CERNER_CLIENT_ID,
        "key_id": demo_keys.DEMO_CERNER_KEY_ID,
        "algorithm": "ES384",
        "push_appointments": True,
    }
    return config, {"private_key": demo_keys.DEMO_CERNER_PRIVATE_KEY}
