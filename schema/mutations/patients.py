"""Create, update, archive and unarchive patients."""

from __future__ import annotations

from datetime import date

import strawberry

from gateway.services import patients as patient_service
from gateway.services.patients import UNSET as KEEP
from gateway.services.patients import PatientFields
from schema.context import Info
from schema.ids import from_global_id
from schema.transactions import Transactional
from schema.types import Patient


@strawberry.input
class CreatePatientInput:
    first_name: str
    last_name: str
    date_of_birth: date | None = None
    email: str | None = None
    phone: str | None = None
    emr_system: str | None = None
    emr_id: str | None = None
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="The patient's own login"
    )


@strawberry.input(description="Only the fields you send change; send null to clear an optional one")
class UpdatePatientInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    date_of_birth: date | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    emr_system: str | None = strawberry.UNSET
    emr_id: str | None = strawberry.UNSET
    user_id: strawberry.ID | None = strawberry.UNSET


def _fields(data: CreatePatientInput | UpdatePatientInput) -> PatientFields:
    values = {}
    for name in PatientFields.__dataclass_fields__:
        value = getattr(data, name)
        if value is strawberry.UNSET:
            values[name] = KEEP
        elif name == "user_id" and value is not None:
            values[name] = from_global_id(value, "User", "userId")
        else:
            values[name] = value
    return PatientFields(**values)


@strawberry.type
class PatientMutations:
    @strawberry.mutation(extensions=[Transactional()])
    async def create_patient(self, info: Info, input: CreatePatientInput) -> Patient:
        return Patient.from_model(
            await patient_service.create_patient(info.context, _fields(input))
        )

    @strawberry.mutation(extensions=[Transactional()])
    async def update_patient(
        self, info: Info, id: strawberry.ID, input: UpdatePatientInput
    ) -> Patient:
        row_id = from_global_id(id, "Patient")
        return Patient.from_model(
            await patient_service.update_patient(info.context, row_id, _fields(input))
        )

    @strawberry.mutation(
        extensions=[Transactional()], description="Hide from lists; keeps all history"
    )
    async def archive_patient(self, info: Info, id: strawberry.ID) -> Patient:
        row_id = from_global_id(id, "Patient")
        return Patient.from_model(await patient_service.set_archived(info.context, row_id, True))

    @strawberry.mutation(extensions=[Transactional()])
    async def unarchive_patient(self, info: Info, id: strawberry.ID) -> Patient:
        row_id = from_global_id(id, "Patient")
        return Patient.from_model(await patient_service.set_archived(info.context, row_id, False))
