"""Oracle Health (Cerner Millennium) over FHIR R4: the same operations as Epic.

`open_sandbox` connects without credentials, the way Oracle Health's open
sandbox endpoint works: reads only, every push is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
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


class CernerConfig(FhirConfig):
    vendor: ClassVar[str] = "Oracle Health"

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


def dev_fake_app() -> Starlette:
    """A local Oracle Health for the demo (PROVIDER_FAKES), mounted at /_fakes/emr_cerner."""
    from plugins.fhir_base import demo, demo_keys

    return demo.fake_app(CernerConfig.vendor, demo_keys.CERNER)


def demo_config(fakes_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Point a demo clinic at the local fake Oracle Health (ES384 key), pushes on."""
    from plugins.fhir_base import demo, demo_keys

    return demo.clinic_config(fakes_url, declaration.name, demo_keys.CERNER)
