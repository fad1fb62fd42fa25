"""Epic over FHIR R4: patient search, read and import; Appointment and DocumentReference pushes.

The operations manual's EPIC_BASE_URL / EPIC_CLIENT_ID / EPIC_CLIENT_SECRET (and
any other EPIC_<FIELD>) are platform defaults; a clinic's own settings win.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.applications import Starlette

from gateway.integrations import Kind, PluginDeclaration
from plugins.fhir_base.config import FhirConfig

# Re-exported: pluggy collects the hook implementations from this module.
from plugins.fhir_base.hooks import get_patient as get_patient
from plugins.fhir_base.hooks import health_check as health_check
from plugins.fhir_base.hooks import push_appointment as push_appointment
from plugins.fhir_base.hooks import push_document as push_document
from plugins.fhir_base.hooks import search_patients as search_patients
from plugins.fhir_base.hooks import validate_config as validate_config


class EpicConfig(FhirConfig):
    """Epic's backend app: a non-production or production client id and its key pair."""

    vendor: ClassVar[str] = "Epic"


declaration = PluginDeclaration(
    name="emr_epic",
    kind=Kind.EMR,
    label="Epic",
    description="Epic FHIR R4: find and import patients, push counseling appointments.",
    version="1.0.0",
    config_model=EpicConfig,
    env_prefix="EPIC_",
)


def dev_fake_app() -> Starlette:
    """A local Epic for the demo (PROVIDER_FAKES), mounted at /_fakes/emr_epic."""
    from plugins.fhir_base import demo, demo_keys

    return demo.fake_app(EpicConfig.vendor, demo_keys.EPIC, location_only=True)


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Epic, with appointment pushes on."""
    from plugins.fhir_base import demo, demo_keys

    return demo.clinic_config(fakes_url, declaration.name, demo_keys.EPIC)
