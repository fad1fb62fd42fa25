"""A FHIR plugin's local demo EMR (`make run`, PROVIDER_FAKES): the fake and the clinic config.

The plugins import this lazily: only the demo needs the fake server and the demo keys.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from plugins.fhir_base.demo_keys import DemoClient
from plugins.fhir_base.fake import FakeFhir


def fake_app(vendor: str, client: DemoClient, *, location_only: bool = False) -> Starlette:
    """A fake `vendor` FHIR server that trusts `client`'s demo key."""
    fake = FakeFhir(vendor=vendor, location_only=location_only)
    fake.register_private_key(client.client_id, client.private_key, client.key_id)
    return fake.app()


def clinic_config(
    fakes_url: str, plugin: str, client: DemoClient
) -> tuple[dict[str, Any], dict[str, str]]:
    """(config, secrets) for a demo clinic on the fake at /_fakes/<plugin>, appointment pushes on."""
    config = {
        "base_url": f"{fakes_url.rstrip('/')}/{plugin}",
        "client_id": client.client_id,
        "key_id": client.key_id,
        "algorithm": client.algorithm,
        "push_appointments": True,
    }
    return config, {"private_key": client.private_key}
