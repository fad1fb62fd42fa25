"""Both EMR plugins pass the plugin contract every Santana plugin passes (gateway.testing).

fhirclient opens its own connections, so each fake FHIR server is served on a local port.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

import plugins.emr_cerner.plugin as cerner_plugin
import plugins.emr_epic.plugin as epic_plugin
from gateway.integrations import AppointmentPush, PatientQuery
from gateway.testing import PluginContractTests
from plugins.fhir_base.fake import FakeFhir
from tests.emr.conftest import pem, serve

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@cache
def keys() -> dict[str, str]:
    return {
        "rsa": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ec": pem(ec.generate_private_key(ec.SECP384R1())),
        "stranger": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }


@cache
def fake_url(vendor: str, key: str) -> str:
    fake = FakeFhir(vendor=vendor, location_only=vendor == "Epic")
    fake.register_private_key("contract-client", keys()[key], "contract-kid")
    return serve(fake.app())[0]


def calls(patient: str) -> dict[str, dict[str, Any]]:
    return {
        "search_patients": {"query": PatientQuery.model_validate({"family": "Chalmers"})},
        "get_patient": {"emr_id": patient},
        "push_appointment": {
            "appointment": AppointmentPush.model_validate(
                {
                    "emr_patient_id": patient,
                    "starts_at": START,
                    "ends_at": START + timedelta(minutes=50),
                    "description": "Counseling session",
                    "reference": "contract-session",
                }
            )
        },
    }


class TestEpicContract(PluginContractTests):
    plugin = epic_plugin  # type: ignore[misc]
    sample_calls = calls("example")

    secrets = {"private_key": keys()["rsa"]}
    bad_secrets = {"private_key": keys()["stranger"]}

    @property
    def config(self) -> dict[str, Any]:  # type: ignore[override, misc]
        return {
            "base_url": fake_url("Epic", "rsa"),
            "client_id": "contract-client",
            "key_id": "contract-kid",
            "push_appointments": True,
        }


class TestOracleHealthContract(PluginContractTests):
    plugin = cerner_plugin  # type: ignore[misc]
    sample_calls = calls("1")

    secrets = {"private_key": keys()["ec"]}
    bad_secrets = {"private_key": keys()["stranger"]}

    @property
    def config(self) -> dict[str, Any]:  # type: ignore[override, misc]
        return {
            "base_url": fake_url("Oracle Health", "ec"),
            "client_id": "contract-client",
            "key_id": "contract-kid",
            "algorithm": "ES384",
            "push_appointments": True,
        }
