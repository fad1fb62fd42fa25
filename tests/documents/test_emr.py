"""sendDocumentToEmr: queued through the outbox, delivered to the EMR plugin's push_document.

The EMR here is a contract-level stand-in (an `emr` plugin recording what it is
handed); the Epic and Oracle Health plugins implement the same hook over FHIR.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import plugins.store_local.plugin as store_local
from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.tenancy import TenantScope
from gateway.emr.models import EmrPatientLink
from gateway.integrations import (
    AppointmentPush,
    DocumentPush,
    Kind,
    PluginContext,
    PluginDeclaration,
    PushedAppointment,
    PushedDocument,
    hookimpl,
)
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.outbox import OutboxWorker
from gateway.testing import plugin_manager
from tests.conftest import GraphQLClient
from tests.documents.conftest import PDF, Docs
from tests.factories import World

SEND = """mutation($id: ID!) { sendDocumentToEmr(id: $id) { id emrDocumentId } }"""
DOCUMENT = """query($id: ID!) { patientDocument(id: $id) { id emrDocumentId } }"""
ENABLE = """mutation($p: String!) { enableIntegration(plugin: $p, config: {}) { status } }"""


class NoConfig(BaseModel):
    pass


class RecordingEmr:
    """An EMR plugin that files documents in memory."""

    def __init__(self, name: str) -> None:
        self.declaration = PluginDeclaration(
            name=name, kind=Kind.EMR, label=f"Test EMR {name}", config_model=NoConfig
        )
        self.documents: list[DocumentPush] = []

    @hookimpl
    async def validate_config(self, ctx: PluginContext) -> None:
        return None

    @hookimpl
    async def health_check(self, ctx: PluginContext) -> str:
        return "ok"

    @hookimpl
    async def search_patients(self, ctx: PluginContext, query: Any) -> list[Any]:
        return []

    @hookimpl
    async def get_patient(self, ctx: PluginContext, emr_id: str) -> None:
        return None

    @hookimpl
    async def push_appointment(
        self, ctx: PluginContext, appointment: AppointmentPush
    ) -> PushedAppointment:
        return PushedAppointment(emr_appointment_id="appt-1")

    @hookimpl
    async def push_document(self, ctx: PluginContext, document: DocumentPush) -> PushedDocument:
        self.documents.append(document)
        return PushedDocument(emr_document_id=f"DocumentReference/{len(self.documents)}")


class EmrWithoutDocuments(RecordingEmr):
    """The optional hook left out (pluggy skips an attribute that is not a hook function)."""

    push_document = None  # type: ignore[assignment]


@pytest.fixture
async def emr_docs(
    settings: Any, database: Database, world: World, spool: Path
) -> AsyncIterator[tuple[Docs, RecordingEmr, IntegrationHub]]:
    emr = RecordingEmr("emr_files")
    manager = plugin_manager(store_local, emr, EmrWithoutDocuments("emr_plain"))
    hub = IntegrationHub.create(settings, database, manager=manager)
    app = create_app(settings, database, hub)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            gql = GraphQLClient(http, settings)
            yield Docs(http, gql, database, settings, world, spool, app), emr, hub


async def link(database: Database, world: World, plugin: str) -> None:
    a = world.a
    async with database.transaction(TenantScope.clinic(a.clinic.id)) as db:
        db.add(
            EmrPatientLink(
                clinic_id=a.clinic.id,
                id=uuid.uuid4(),
                patient_id=a.own_patient.id,
                plugin=plugin,
                emr_patient_id="fhir-patient-77",
            )
        )


async def test_send_to_emr_queues_then_delivers(emr_docs: Any) -> None:
    docs, emr, hub = emr_docs
    a = docs.world.a
    doc_id = await docs.uploaded(a.counselor, a.own_patient, filename="consent.pdf")
    # No EMR enabled yet: a clear error, nothing queued.
    assert await docs.gql.error_code(SEND, {"id": doc_id}, user=a.counselor) == "NOT_CONFIGURED"
    await docs.gql.data(ENABLE, {"p": "emr_files"}, user=a.admin)
    # Enabled, but the patient has no EMR record to file it under.
    assert await docs.gql.error_code(SEND, {"id": doc_id}, user=a.counselor) == "VALIDATION"
    await link(docs.database, docs.world, "emr_files")
    # Patients do not file documents into the EMR.
    assert await docs.gql.error_code(SEND, {"id": doc_id}, user=a.patient_user) == "FORBIDDEN"

    sent = await docs.gql.data(SEND, {"id": doc_id}, user=a.counselor)
    assert sent["sendDocumentToEmr"]["emrDocumentId"] is None  # queued, not yet delivered
    assert emr.documents == []
    stats = await OutboxWorker(hub).run_once()
    assert stats.delivered == 1
    [pushed] = emr.documents
    assert pushed.emr_patient_id == "fhir-patient-77"
    assert pushed.content_type == "application/pdf" and pushed.title == "consent.pdf"
    assert base64.b64decode(pushed.content_b64) == PDF
    after = await docs.gql.data(DOCUMENT, {"id": doc_id}, user=a.counselor)
    assert after["patientDocument"]["emrDocumentId"] == "DocumentReference/1"
    actions = [e.action for e in await docs.audit(a.clinic.id)]
    assert actions == ["document.upload", "document.send_to_emr"]


async def test_emr_without_document_support(emr_docs: Any) -> None:
    docs, emr, _ = emr_docs
    a = docs.world.a
    doc_id = await docs.uploaded(a.counselor, a.own_patient)
    await docs.gql.data(ENABLE, {"p": "emr_plain"}, user=a.admin)
    await link(docs.database, docs.world, "emr_plain")
    body = await docs.gql.execute(SEND, {"id": doc_id}, user=a.counselor)
    assert body["errors"][0]["extensions"]["code"] == "NOT_CONFIGURED"
    assert "does not accept documents" in body["errors"][0]["message"]
