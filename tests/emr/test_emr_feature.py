"""The EMR feature through GraphQL: clinic A on (fake) Epic, clinic B on (fake) Oracle Health.

Search, import (twice: one patient), link, sync, permissions, the audit trail, and
sessions pushed as FHIR Appointments through the outbox, including an EMR outage
during the push (delivered once the EMR is back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

import plugins.emr_cerner.plugin as cerner_plugin
import plugins.emr_epic.plugin as epic_plugin
from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.models import AuditEvent, Patient
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.emr.links import emr_patient_id
from gateway.emr.models import EmrAppointment, EmrPatientLink
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import OutboxMessage, OutboxStatus
from gateway.integrations.outbox import OutboxWorker
from gateway.settings import Settings, load_settings
from gateway.testing import plugin_manager
from schema.ids import from_global_id, to_global_id
from tests.conftest import GraphQLClient
from tests.emr.conftest import Emrs, Keys, cerner_config, epic_config
from tests.factories import World, tomorrow_at

ENABLE = """mutation($plugin: String!, $config: JSON, $secrets: JSON) {
  enableIntegration(plugin: $plugin, config: $config, secrets: $secrets) { plugin status } }"""
SEARCH = """query($family: String, $given: String, $identifier: String, $first: Int) {
  searchEmrPatients(family: $family, given: $given, identifier: $identifier, first: $first) {
    emrId family given birthDate gender mrn phone linkedPatientId } }"""
IMPORT = """mutation($emrId: String!, $patientId: ID) {
  importEmrPatient(emrId: $emrId, patientId: $patientId) {
    created patient { id firstName lastName dateOfBirth phone emr { system id } } } }"""
SYNC = """mutation($p: ID!) { syncPatientFromEmr(patientId: $p) {
  id firstName lastName email emr { system id } } }"""
SCHEDULE = """mutation($p: ID!, $at: DateTime!) {
  scheduleSession(input: {patientId: $p, startsAt: $at}) { id } }"""
RESCHEDULE = """mutation($id: ID!, $at: DateTime!) {
  rescheduleSession(id: $id, startsAt: $at) { id } }"""
CANCEL = """mutation($id: ID!) { cancelSession(id: $id) { id status } }"""


def secret_split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    secrets = {k: config.pop(k) for k in ("private_key",) if k in config}
    return config, secrets


@dataclass
class EmrApp:
    gql: GraphQLClient
    world: World
    database: Database
    hub: IntegrationHub
    emrs: Emrs

    async def enable(self, plugin: str, config: dict[str, Any], admin: Any) -> None:
        config, secrets = secret_split(config)
        await self.gql.data(
            ENABLE, {"plugin": plugin, "config": config, "secrets": secrets}, user=admin
        )

    async def deliver(self) -> Any:
        return await OutboxWorker(self.hub, rng=lambda: 0.5).run_once()

    async def scalar(self, clinic_id: Any, query: Any) -> Any:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return await db.scalar(query)

    async def rows(self, clinic_id: Any, query: Any) -> list[Any]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            return list(await db.scalars(query))

    async def audit_actions(self, clinic_id: Any) -> list[str]:
        rows = await self.rows(
            clinic_id,
            select(AuditEvent.action)
            .where(AuditEvent.clinic_id == clinic_id, AuditEvent.action.like("emr.%"))
            .order_by(AuditEvent.seq),
        )
        return rows

    async def import_(self, user: Any, emr_id: str, patient: Any = None) -> dict[str, Any]:
        variables: dict[str, Any] = {"emrId": emr_id}
        if patient is not None:
            variables["patientId"] = to_global_id("Patient", patient.id)
        return (await self.gql.data(IMPORT, variables, user=user))["importEmrPatient"]  # type: ignore[no-any-return]


@pytest.fixture
def emr_settings(settings: Settings) -> Settings:
    return load_settings(
        app_env="test",
        database_url=settings.database_url,
        integration_timeout_seconds=5,
        integration_circuit_failures=50,  # the outage below must not open the circuit
    )


@pytest.fixture
async def emr(
    emr_settings: Settings, database: Database, world: World, emrs: Emrs, keys: Keys
) -> AsyncIterator[EmrApp]:
    hub = IntegrationHub.create(
        emr_settings, database, manager=plugin_manager(epic_plugin, cerner_plugin)
    )
    app = create_app(emr_settings, database, integrations=hub)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        harness = EmrApp(GraphQLClient(http, emr_settings), world, database, hub, emrs)
        await harness.enable("emr_epic", epic_config(emrs, keys), world.a.admin)
        await harness.enable(
            "emr_cerner", cerner_config(emrs, keys, push_appointments=False), world.b.admin
        )
        yield harness


async def test_each_clinic_searches_imports_and_syncs_from_its_own_emr(emr: EmrApp) -> None:
    w = emr.world
    hits = (await emr.gql.data(SEARCH, {"family": "Chalmers"}, user=w.a.counselor))[
        "searchEmrPatients"
    ]
    assert hits == [
        {
            "emrId": "example",
            "family": "Chalmers",
            "given": "Peter James",
            "birthDate": "1974-12-25",
            "gender": "male",
            "mrn": "12345",
            "phone": "(03) 5555 6473",
            "linkedPatientId": None,
        }
    ]
    first = await emr.import_(w.a.counselor, "example")
    again = await emr.import_(w.a.admin, "example")
    assert first["created"] is True and again["created"] is False
    assert first["patient"]["id"] == again["patient"]["id"]
    assert first["patient"]["emr"] == {"system": "emr_epic", "id": "example"}
    assert (first["patient"]["firstName"], first["patient"]["lastName"]) == (
        "Peter James",
        "Chalmers",
    )
    hits = (await emr.gql.data(SEARCH, {"identifier": "12345"}, user=w.a.counselor))[
        "searchEmrPatients"
    ]
    assert hits[0]["linkedPatientId"] == first["patient"]["id"]

    # The EMR's record changes; a sync brings it over.
    emr.emrs.epic.patients["example"]["name"][0]["family"] = "Chalmers-Smith"
    emr.emrs.epic.patients["example"].setdefault("telecom", []).append(
        {"system": "email", "value": "peter@example.org"}
    )
    synced = (await emr.gql.data(SYNC, {"p": first["patient"]["id"]}, user=w.a.counselor))[
        "syncPatientFromEmr"
    ]
    assert (synced["lastName"], synced["email"]) == ("Chalmers-Smith", "peter@example.org")

    # Clinic B, on Oracle Health, does the same with its own EMR.
    hits_b = (await emr.gql.data(SEARCH, {"given": "Eve"}, user=w.b.counselor))["searchEmrPatients"]
    assert [h["emrId"] for h in hits_b] == ["1"]
    imported_b = await emr.import_(w.b.counselor, "1")
    assert imported_b["patient"]["emr"] == {"system": "emr_cerner", "id": "1"}
    await emr.gql.data(SYNC, {"p": imported_b["patient"]["id"]}, user=w.b.admin)

    patient_id = from_global_id(first["patient"]["id"], "Patient")
    assert (
        await emr.scalar(
            w.a.clinic.id,
            select(func.count())
            .select_from(Patient)
            .where(Patient.clinic_id == w.a.clinic.id, Patient.emr_id == "example"),
        )
        == 1
    )
    async with emr.database.session(TenantScope.clinic(w.a.clinic.id)) as db:
        assert await emr_patient_id(db, w.a.clinic.id, patient_id) == "example"
        assert await emr_patient_id(db, w.a.clinic.id, w.a.patients[1].id) is None
    assert await emr.audit_actions(w.a.clinic.id) == [
        "emr.patients_searched",
        "emr.patient_imported",
        "emr.patients_searched",
        "emr.patient_synced",
    ]
    assert await emr.audit_actions(w.b.clinic.id) == [
        "emr.patients_searched",
        "emr.patient_imported",
        "emr.patient_synced",
    ]
    details = await emr.rows(
        w.a.clinic.id,
        select(AuditEvent.details).where(
            AuditEvent.clinic_id == w.a.clinic.id, AuditEvent.action.like("emr.%")
        ),
    )
    assert "Chalmers" not in str(details) and "12345" not in str(details)  # no PHI
    calls = await emr.rows(
        w.a.clinic.id,
        select(AuditEvent.details).where(
            AuditEvent.clinic_id == w.a.clinic.id, AuditEvent.action == "integration.call"
        ),
    )
    assert {c["hook"] for c in calls} == {"search_patients", "get_patient"}


async def test_an_existing_patient_is_linked_not_duplicated(emr: EmrApp) -> None:
    w = emr.world
    target = w.a.patients[1]
    linked = await emr.import_(w.a.admin, "example", target)
    assert linked["created"] is False
    assert linked["patient"]["id"] == to_global_id("Patient", target.id)
    assert linked["patient"]["firstName"] == target.first_name  # our demographics kept
    assert linked["patient"]["emr"] == {"system": "emr_epic", "id": "example"}

    other_record = await emr.gql.error_code(
        IMPORT, {"emrId": "1", "patientId": to_global_id("Patient", target.id)}, user=w.a.admin
    )
    other_patient = await emr.gql.error_code(
        IMPORT,
        {"emrId": "example", "patientId": to_global_id("Patient", w.a.patients[2].id)},
        user=w.a.admin,
    )
    assert (other_record, other_patient) == ("CONFLICT", "CONFLICT")
    links = await emr.rows(
        w.a.clinic.id, select(EmrPatientLink).where(EmrPatientLink.clinic_id == w.a.clinic.id)
    )
    assert [(link.patient_id, link.emr_patient_id) for link in links] == [(target.id, "example")]
    assert "emr.patient_linked" in await emr.audit_actions(w.a.clinic.id)


async def test_unknown_records_and_unlinked_patients_are_clear_errors(emr: EmrApp) -> None:
    w = emr.world
    count = select(func.count()).select_from(Patient).where(Patient.clinic_id == w.a.clinic.id)
    before = await emr.scalar(w.a.clinic.id, count)
    assert await emr.gql.error_code(IMPORT, {"emrId": "nobody"}, user=w.a.admin) == "NOT_FOUND"
    unlinked = {"p": to_global_id("Patient", w.a.patients[1].id)}
    assert await emr.gql.error_code(SYNC, unlinked, user=w.a.admin) == "VALIDATION"
    assert await emr.gql.error_code(SEARCH, {}, user=w.a.admin) == "VALIDATION"
    assert await emr.scalar(w.a.clinic.id, count) == before


async def test_patients_and_platform_admins_reach_no_emr_data(emr: EmrApp) -> None:
    w = emr.world
    for user in (w.a.patient_user, w.platform_admin):
        assert await emr.gql.error_code(SEARCH, {"family": "Chalmers"}, user=user) == "FORBIDDEN"
        assert await emr.gql.error_code(IMPORT, {"emrId": "example"}, user=user) == "FORBIDDEN"
    assert not [r for r in emr.emrs.epic.requests if r[1].startswith("/epic/Patient")]


async def test_an_emr_outage_fails_the_search_with_a_typed_error_and_audits_it(
    emr: EmrApp,
) -> None:
    emr.emrs.epic.down = True
    body = await emr.gql.execute(SEARCH, {"family": "Chalmers"}, user=emr.world.a.counselor)
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    outcomes = await emr.rows(
        emr.world.a.clinic.id,
        select(AuditEvent.outcome).where(
            AuditEvent.clinic_id == emr.world.a.clinic.id,
            AuditEvent.action == "emr.patients_searched",
        ),
    )
    assert outcomes == ["failure"]


async def _linked_patient(emr: EmrApp) -> str:
    imported = await emr.import_(emr.world.a.counselor, "example", emr.world.a.patients[1])
    return str(imported["patient"]["id"])


async def _appointment_rows(emr: EmrApp) -> list[EmrAppointment]:
    clinic_id = emr.world.a.clinic.id
    return await emr.rows(
        clinic_id, select(EmrAppointment).where(EmrAppointment.clinic_id == clinic_id)
    )


async def test_booked_rescheduled_and_cancelled_sessions_update_one_appointment(
    emr: EmrApp,
) -> None:
    w = emr.world
    patient = await _linked_patient(emr)
    starts = tomorrow_at(14)
    session = (
        await emr.gql.data(SCHEDULE, {"p": patient, "at": starts.isoformat()}, user=w.a.counselor)
    )["scheduleSession"]["id"]
    assert (await emr.deliver()).delivered == 1
    [row] = await _appointment_rows(emr)
    fhir = emr.emrs.epic.appointments[str(row.emr_appointment_id)]
    assert fhir["status"] == "booked" and fhir["start"] == starts.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fhir["participant"][0]["actor"]["reference"] == "Patient/example"

    moved = starts + timedelta(hours=2)
    await emr.gql.data(RESCHEDULE, {"id": session, "at": moved.isoformat()}, user=w.a.counselor)
    await emr.gql.data(CANCEL, {"id": session}, user=w.a.counselor)
    # The cancel replaced the waiting reschedule push: one delivery, the latest state.
    assert (await emr.deliver()).delivered == 1
    assert len(emr.emrs.epic.appointments) == 1
    fhir = emr.emrs.epic.appointments[str(row.emr_appointment_id)]
    assert fhir["status"] == "cancelled" and fhir["start"] == moved.strftime("%Y-%m-%dT%H:%M:%SZ")
    [row] = await _appointment_rows(emr)
    assert row.last_status == "cancelled"
    assert (await emr.audit_actions(w.a.clinic.id)).count("emr.appointment_pushed") == 2

    # A reschedule delivered on its own moves the same Appointment.
    await emr.gql.data(SCHEDULE, {"p": patient, "at": starts.isoformat()}, user=w.a.counselor)


async def test_a_push_during_an_emr_outage_is_delivered_once_it_is_back(emr: EmrApp) -> None:
    w = emr.world
    patient = await _linked_patient(emr)
    emr.emrs.epic.down = True
    await emr.gql.data(
        SCHEDULE, {"p": patient, "at": tomorrow_at(15).isoformat()}, user=w.a.counselor
    )
    stats = await emr.deliver()
    assert (stats.delivered, stats.retried) == (0, 1)
    assert not emr.emrs.epic.appointments
    assert [r.emr_appointment_id for r in await _appointment_rows(emr)] == [None]

    emr.emrs.epic.down = False
    async with emr.database.transaction(TenantScope.clinic(w.a.clinic.id)) as db:
        await db.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))  # time passes
    assert (await emr.deliver()).delivered == 1
    [row] = await _appointment_rows(emr)
    assert emr.emrs.epic.appointments[str(row.emr_appointment_id)]["status"] == "booked"
    [message] = await emr.rows(
        w.a.clinic.id, select(OutboxMessage).where(OutboxMessage.clinic_id == w.a.clinic.id)
    )
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 2)


async def test_nothing_is_queued_when_pushes_are_off_or_the_patient_is_unlinked(
    emr: EmrApp,
) -> None:
    w = emr.world
    # Clinic A pushes, but this patient has no EMR record.
    unlinked = to_global_id("Patient", w.a.patients[2].id)
    await emr.gql.data(
        SCHEDULE, {"p": unlinked, "at": tomorrow_at(16).isoformat()}, user=w.a.counselor
    )
    # Clinic B's Oracle Health integration has appointment pushes off.
    imported = await emr.import_(w.b.counselor, "1", w.b.patients[1])
    await emr.gql.data(
        SCHEDULE,
        {"p": imported["patient"]["id"], "at": tomorrow_at(16).isoformat()},
        user=w.b.counselor,
    )
    for clinic in (w.a.clinic.id, w.b.clinic.id):
        queued = await emr.rows(
            clinic, select(OutboxMessage.hook).where(OutboxMessage.clinic_id == clinic)
        )
        assert "push_appointment" not in queued


async def test_a_change_while_a_push_is_in_flight_waits_for_it(emr: EmrApp) -> None:
    """Two pushes of one session never run at once, so an older one cannot land last."""
    w = emr.world
    patient = await _linked_patient(emr)
    starts = tomorrow_at(14)
    session = (
        await emr.gql.data(SCHEDULE, {"p": patient, "at": starts.isoformat()}, user=w.a.counselor)
    )["scheduleSession"]["id"]
    async with emr.database.transaction(TenantScope.clinic(w.a.clinic.id)) as db:
        # A worker elsewhere holds the booking push right now.
        await db.execute(
            update(OutboxMessage).values(lease_owner="other-worker", lease_until=utcnow())
        )
    await emr.gql.data(CANCEL, {"id": session}, user=w.a.counselor)
    messages = await emr.rows(
        w.a.clinic.id,
        select(OutboxMessage)
        .where(OutboxMessage.clinic_id == w.a.clinic.id)
        .order_by(OutboxMessage.created_at),
    )
    assert len(messages) == 2  # the in-flight one was left alone
    assert messages[1].next_attempt_at > utcnow() + timedelta(seconds=30)
