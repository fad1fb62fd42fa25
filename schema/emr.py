"""GraphQL for the EMR: search the clinic's EMR, import or link a patient, re-sync one.

Who may do what is decided in gateway.emr.service (through gateway.auth.permissions):
counselors and clinic admins of the clinic; never patients or platform admins.
A patient's link shows as `Patient.emr` (system = the EMR plugin, id = the EMR's
Patient id).
"""

from __future__ import annotations

from datetime import date

import strawberry

import gateway.emr.appointments  # noqa: F401  (SessionChanged listener, outbox outcomes)
from gateway.emr import service
from schema.context import Info
from schema.ids import from_global_id, to_global_id
from schema.transactions import Transactional
from schema.types import Patient


@strawberry.type(description="A patient record found in the clinic's EMR")
class EmrPatientRecord:
    emr_id: str = strawberry.field(description="The EMR's Patient id (import it with this)")
    family: str
    given: str
    birth_date: date | None
    gender: str | None
    mrn: str | None = strawberry.field(description="Medical record number, if the EMR has one")
    email: str | None
    phone: str | None
    linked_patient_id: strawberry.ID | None = strawberry.field(
        description="Our patient already linked to this record, if it was imported"
    )

    @classmethod
    def from_hit(cls, hit: service.EmrSearchHit) -> EmrPatientRecord:
        r = hit.record
        return cls(
            emr_id=r.emr_id,
            family=r.family,
            given=r.given,
            birth_date=r.birth_date,
            gender=r.gender,
            mrn=r.mrn,
            email=r.email,
            phone=r.phone,
            linked_patient_id=(
                to_global_id("Patient", hit.linked_patient_id) if hit.linked_patient_id else None
            ),
        )


@strawberry.type(description="The patient an EMR record was imported as or linked to")
class EmrImport:
    patient: Patient
    created: bool = strawberry.field(
        description="True when a new patient was created; false when linked or already imported"
    )


@strawberry.type
class EmrQueries:
    @strawberry.field(
        description="Search the clinic's EMR by name, birth date or identifier (MRN); "
        "counselors and clinic admins"
    )
    async def search_emr_patients(
        self,
        info: Info,
        family: str | None = None,
        given: str | None = None,
        birth_date: date | None = None,
        identifier: str | None = None,
        first: int = 20,
    ) -> list[EmrPatientRecord]:
        hits = await service.search(
            info.context,
            family=family,
            given=given,
            birth_date=birth_date,
            identifier=identifier,
            limit=first,
        )
        return [EmrPatientRecord.from_hit(h) for h in hits]


@strawberry.type
class EmrMutations:
    @strawberry.mutation(
        extensions=[Transactional()],
        description="Create a patient from an EMR record, or link `patientId` to it; "
        "importing the same record again returns the same patient",
    )
    async def import_emr_patient(
        self, info: Info, emr_id: str, patient_id: strawberry.ID | None = None
    ) -> EmrImport:
        target = from_global_id(patient_id, "Patient", "patientId") if patient_id else None
        patient, created = await service.import_patient(info.context, emr_id, target)
        return EmrImport(patient=Patient.from_model(patient), created=created)

    @strawberry.mutation(
        extensions=[Transactional()],
        description="Refresh a linked patient's name, birth date, email and phone from the EMR",
    )
    async def sync_patient_from_emr(self, info: Info, patient_id: strawberry.ID) -> Patient:
        row = await service.sync_patient(
            info.context, from_global_id(patient_id, "Patient", "patientId")
        )
        return Patient.from_model(row)
