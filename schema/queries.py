"""Root query fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.errors import NotFound
from gateway.services import clinics as clinic_service
from gateway.services import patients as patient_service
from gateway.services import sessions as session_service
from gateway.services import users as user_service
from gateway.services.sessions import SessionFilter
from schema.audit import AuditQuery
from schema.context import Info
from schema.documents import DocumentQueries
from schema.emr import EmrQueries
from schema.ids import from_global_id, parse_global_id
from schema.integrations import IntegrationQueries
from schema.notifications import NotificationQueries
from schema.ops import OpsQueries
from schema.payments import PaymentQueries
from schema.two_factor import TwoFactorQuery
from schema.types import (
    Clinic,
    Connection,
    CounselingSession,
    Patient,
    SessionStatus,
    User,
    connection,
    patient_connection,
)


def session_filter_from(
    from_: datetime | None,
    to: datetime | None,
    counselor_id: str | None,
    patient_id: str | None,
    status: list[SessionStatus] | None,  # type: ignore[valid-type]
) -> SessionFilter:
    """The `sessions` field's arguments as the service's filter (shared with schema.compiled)."""
    return SessionFilter(
        starts_from=from_,
        starts_before=to,
        counselor_id=from_global_id(counselor_id, "User", "counselorId") if counselor_id else None,
        patient_id=from_global_id(patient_id, "Patient", "patientId") if patient_id else None,
        statuses=list(status) if status else None,
    )


Node = Annotated[Clinic | User | Patient | CounselingSession, strawberry.union("Node")]


@strawberry.type
class Query(
    IntegrationQueries,
    OpsQueries,
    AuditQuery,
    TwoFactorQuery,
    PaymentQueries,
    NotificationQueries,
    EmrQueries,
    DocumentQueries,
):
    @strawberry.field(description="The logged-in account")
    async def me(self, info: Info) -> User:
        principal = info.context.require_principal()
        return User.from_model(await user_service.get_user(info.context, principal.user_id))

    @strawberry.field(description="A clinic: your own by default; platform admins may pass any id")
    async def clinic(self, info: Info, id: strawberry.ID | None = None) -> Clinic:
        if id is None:
            return Clinic.from_model(await clinic_service.own_clinic(info.context))
        row_id = from_global_id(id, "Clinic")
        return Clinic.from_model(await clinic_service.get_clinic(info.context, row_id))

    @strawberry.field(description="Every clinic (platform admins only)")
    async def clinics(self, info: Info) -> list[Clinic]:
        return [Clinic.from_model(c) for c in await clinic_service.list_clinics(info.context)]

    @strawberry.field(description="Patients you may see, by last name (cursor paginated)")
    async def patients(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        search: Annotated[
            str | None, strawberry.argument(description="Part of a name or email")
        ] = None,
        archived: Annotated[
            bool | None,
            strawberry.argument(
                description="false: active only (default); true: archived only; null: both"
            ),
        ] = False,
    ) -> Connection[Patient]:
        page = await patient_service.list_patients(
            info.context, first=first, after=after, search=search, archived=archived
        )
        return await patient_connection(info, page)

    @strawberry.field
    async def patient(self, info: Info, id: strawberry.ID) -> Patient:
        row = await patient_service.get_patient(info.context, from_global_id(id, "Patient"))
        return Patient.from_model(row)

    @strawberry.field(description="Sessions you may see, by start time (cursor paginated)")
    async def sessions(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        from_: Annotated[
            datetime | None, strawberry.argument(name="from", description="Starts at or after")
        ] = None,
        to: Annotated[datetime | None, strawberry.argument(description="Starts before")] = None,
        counselor_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        status: list[SessionStatus] | None = None,  # type: ignore[valid-type]
        newest_first: bool = False,
    ) -> Connection[CounselingSession]:
        flt = session_filter_from(from_, to, counselor_id, patient_id, status)
        page = await session_service.list_sessions(
            info.context, flt, first=first, after=after, newest_first=newest_first
        )
        return connection(page, CounselingSession)

    @strawberry.field
    async def session(self, info: Info, id: strawberry.ID) -> CounselingSession:
        row = await session_service.get_session(
            info.context, from_global_id(id, "CounselingSession")
        )
        return CounselingSession.from_model(row)

    @strawberry.field(description="Any object by its global id")
    async def node(self, info: Info, id: strawberry.ID) -> Node:  # type: ignore[valid-type]
        type_name, row_id = parse_global_id(id)
        ctx = info.context
        if type_name == "Clinic":
            return Clinic.from_model(await clinic_service.get_clinic(ctx, row_id))
        if type_name == "User":
            return User.from_model(await user_service.get_user(ctx, row_id))
        if type_name == "Patient":
            return Patient.from_model(await patient_service.get_patient(ctx, row_id))
        if type_name == "CounselingSession":
            return CounselingSession.from_model(await session_service.get_session(ctx, row_id))
        raise NotFound("Nothing has that id.")
