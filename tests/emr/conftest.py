"""EMR under test: the fake FHIR R4 server on a real port, fhirclient talking HTTP to it.

One uvicorn server per test session; each test installs fresh fakes (Epic at /epic,
Oracle Health at /cerner) and fresh key pairs are registered with them, as
publishing a JWKS would. Token and discovery caches are cleared between tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from gateway.integrations import PluginContext
from plugins.emr_cerner.plugin import CernerConfig
from plugins.emr_epic.plugin import EpicConfig
from plugins.fhir_base import auth
from plugins.fhir_base.fake import FakeFhir
from tests.fakes import serve as serve  # re-exported: test_contract.py serves its own fakes
from tests.fakes import served

EPIC_CLIENT = "epic-backend-clinic-a"
EPIC_KID = "clinic-a-2026"
CERNER_CLIENT = "oracle-backend-clinic-b"
CERNER_KID = "clinic-b-2026"


def pem(key: Any) -> str:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True)
class Keys:
    rsa: str  # RS384
    ec: str  # ES384
    stranger_rsa: str  # a key no EMR was told about


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        rsa=pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ec=pem(ec.generate_private_key(ec.SECP384R1())),
        stranger_rsa=pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    )


class _Switchboard:
    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.app is not None:
            await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[tuple[_Switchboard, str]]:
    board = _Switchboard()
    with served(board) as url:
        yield board, url


@dataclass
class Emrs:
    epic: FakeFhir
    cerner: FakeFhir
    url: str

    @property
    def epic_url(self) -> str:
        return f"{self.url}/epic"

    @property
    def cerner_url(self) -> str:
        return f"{self.url}/cerner"


@pytest.fixture
def emrs(fhir_server: tuple[_Switchboard, str], keys: Keys) -> Iterator[Emrs]:
    board, url = fhir_server
    epic = FakeFhir(vendor="Epic", location_only=True)
    epic.register_private_key(EPIC_CLIENT, keys.rsa, EPIC_KID)
    cerner = FakeFhir(vendor="Oracle Health")
    cerner.register_private_key(CERNER_CLIENT, keys.ec, CERNER_KID)
    board.app = Starlette(
        routes=[Mount("/epic", app=epic.app()), Mount("/cerner", app=cerner.app())]
    )
    auth.clear_caches()
    yield Emrs(epic, cerner, url)
    board.app = None
    auth.clear_caches()


def epic_config(emrs: Emrs, keys: Keys, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": emrs.epic_url,
        "client_id": EPIC_CLIENT,
        "key_id": EPIC_KID,
        "algorithm": "RS384",
        "private_key": keys.rsa,
        "push_appointments": True,
    } | overrides


def cerner_config(emrs: Emrs, keys: Keys, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": emrs.cerner_url,
        "client_id": CERNER_CLIENT,
        "key_id": CERNER_KID,
        "algorithm": "ES384",
        "private_key": keys.ec,
        "push_appointments": True,
    } | overrides


def plugin_context(config: EpicConfig | CernerConfig, key: str | None = None) -> PluginContext:
    return PluginContext(
        clinic_id=uuid.uuid4(),
        plugin="emr_cerner" if isinstance(config, CernerConfig) else "emr_epic",
        config=config,
        http=httpx.AsyncClient(),
        log=logging.LoggerAdapter(logging.getLogger("test.emr")),
        idempotency_key=key,
    )
