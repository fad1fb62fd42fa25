"""Epic over FHIR R4: patient search, read and import; Appointment and DocumentReference pushes.

The operations manual's EPIC_BASE_URL / EPIC_CLIENT_ID / EPIC_CLIENT_SECRET (and
any other EPIC_<FIELD>) are platform defaults; a clinic's own settings win.
"""

from __future__ import annotations

from typing import Any

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

VENDOR = "Epic"


class EpicConfig(FhirConfig):
    """Epic's backend app: a non-production or production client id and its key pair."""


declaration = PluginDeclaration(
    name="emr_epic",
    kind=Kind.EMR,
    label="Epic",
    description="Epic FHIR R4: find and import patients, push counseling appointments.",
    version="1.0.0",
    config_model=EpicConfig,
    env_prefix="EPIC_",
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
    """A local Epic for the demo (PROVIDER_FAKES), mounted at /_fakes/emr_epic."""
    from plugins.fhir_base import demo_keys
    from plugins.fhir_base.fake import FakeFhir

    fake = FakeFhir(vendor=VENDOR, location_only=True)
    fake.register_private_key(
        demo_keys.DEMO_EPIC_CLIENT_ID, demo_keys.DEMO_EPIC_PRIVATE_KEY, demo_keys.DEMO_EPIC_KEY_ID
    )
    return fake.app()


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Epic, with appointment pushes on."""
    from plugins.fhir_base import demo_keys

    config = {
        "base_url": f"{fakes_url.rstrip('/')}/emr_epic",
        "client_id": demo_keys.DEMO_EPIC_CLIENT_ID,
        "key_id": demo_keys.DEMO_EPIC_KEY_ID,
        "algorithm": "RS384",
        "push_appointments": True,
    }
    return config, {"private_key": demo_keys.DEMO_EPIC_PRIVATE_KEY}
