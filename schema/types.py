"""GraphQL object types for the core: clinics, users, patients, counseling sessions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import strawberry

from gateway.db import models
from gateway.services import clinics as clinic_service
from gateway.services import patients as patient_service
from gateway.services import sessions as session_service
from gateway.services.pagination import Page
from schema.context import Info
from schema.ids import to_global_id

Role = strawberry.enum(models.Role, name="Role", description="What an account may do")
Modality = strawberry.enum(models.Modality, name="Modality")
SessionStatus = strawberry.enum(models.SessionStatus, name="SessionStatus")

if TYPE_CHECKING:
    from schema.integrations import ClinicIntegration

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo


def connection(page: Page[Any], convert: type) -> Connection:  # type: ignore[type-arg]
    nodes = [convert.from_model(item) for item in page.items]  # type: ignore[attr-defined]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


def patient_connection(info: Info, page: Page[models.Patient]) -> Connection[Patient]:
    # Rows already fetched are primed, so `session.patient` below them costs no query.
    for row in page.items:
        info.context.loaders.patient.prime(row.id, row)
    return connection(page, Patient)  # type: ignore[arg-type]


@strawberry.type
class Money:
    amount: int = strawberry.field(description="In minor units (cents, paise)")
    currency: str


@strawberry.type
class EmrLink:
    system: str
    id: str


@strawberry.type
class Clinic:
    id: strawberry.ID
    name: str
    slug: str
    timezone: str
    currency: str
    created_at: datetime
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: models.Clinic) -> Clinic:
        return cls(
            id=to_global_id("Clinic", m.id),
            name=m.name,
            slug=m.slug,
            timezone=m.timezone,
            currency=m.currency,
            created_at=m.created_at,
            row_id=m.id,
        )

    @strawberry.field(description="The clinic's patients, by last name (cursor paginated)")
    async def patients(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        search: str | None = None,
        archived: bool | None = False,
    ) -> Connection[Patient]:
        clinic_service.check_same_clinic(info.context, self.row_id)
        page = await patient_service.list_patients(
            info.context, first=first, after=after, search=search, archived=archived
        )
        return patient_connection(info, page)

    @strawberry.field(description="Staff and patient accounts of the clinic")
    async def users(self, info: Info, role: Role | None = None) -> list[User]:  # type: ignore[valid-type]
        from gateway.services import users as user_service

        rows = await user_service.list_users(info.context, self.row_id, role)
        return [User.from_model(u) for u in rows]

    @strawberry.field(
        description="The clinic's integrations: status, circuit, masked secrets (admins only)"
    )
    async def integrations(
        self, info: Info
    ) -> list[Annotated[ClinicIntegration, strawberry.lazy("schema.integrations")]]:
        from schema.integrations import clinic_integrations

        return await clinic_integrations(info, self.row_id)


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    full_name: str
    role: Role  # type: ignore[valid-type]
    is_active: bool
    clinic_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: models.User) -> User:
        return cls(
            id=to_global_id("User", m.id),
            email=m.email,
            full_name=m.full_name,
            role=m.role,
            is_active=m.is_active,
            clinic_row_id=m.clinic_id,
        )

    @strawberry.field
    async def clinic(self, info: Info) -> Clinic | None:
        if self.clinic_row_id is None:
            return None
        row = await info.context.loaders.clinic.load(self.clinic_row_id)
        return Clinic.from_model(row) if row else None


@strawberry.type
class Patient:
    id: strawberry.ID
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    phone: str | None
    archived: bool
    created_at: datetime
    updated_at: datetime
    emr: EmrLink | None = strawberry.field(description="The patient's record in the clinic's EMR")
    row_id: strawberry.Private[uuid.UUID]
    user_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: models.Patient) -> Patient:
        return cls(
            id=to_global_id("Patient", m.id),
            first_name=m.first_name,
            last_name=m.last_name,
            date_of_birth=m.date_of_birth,
            email=m.email,
            phone=m.phone,
            archived=m.archived,
            created_at=m.created_at,
            updated_at=m.updated_at,
            emr=EmrLink(system=m.emr_system, id=m.emr_id) if m.emr_system and m.emr_id else None,
            row_id=m.id,
            user_row_id=m.user_id,
        )

    @strawberry.field
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @strawberry.field(description="The patient's sessions, newest first by default")
    async def sessions(
        self,
        info: Info,
        first: int = 10,
        newest_first: bool = True,
        status: list[SessionStatus] | None = None,  # type: ignore[valid-type]
    ) -> list[CounselingSession]:
        from gateway.services.pagination import check_page_size

        check_page_size(first, info.context.settings.max_page_size)
        loader = info.context.loaders.sessions_of_patient(first, newest_first, status)
        return [CounselingSession.from_model(s) for s in await loader.load(self.row_id)]

    @strawberry.field(description="The patient's own login, if they have one")
    async def user(self, info: Info) -> User | None:
        if self.user_row_id is None:
            return None
        row = await info.context.loaders.user.load(self.user_row_id)
        return User.from_model(row) if row else None


@strawberry.type
class CounselingSession:
    id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    modality: Modality  # type: ignore[valid-type]
    status: SessionStatus  # type: ignore[valid-type]
    fee: Money
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    model: strawberry.Private[models.CounselingSession]

    @classmethod
    def from_model(cls, m: models.CounselingSession) -> CounselingSession:
        return cls(
            id=to_global_id("CounselingSession", m.id),
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            duration_minutes=m.duration_minutes,
            modality=m.modality,
            status=m.status,
            fee=Money(amount=m.fee_amount, currency=m.currency),
            cancel_reason=m.cancel_reason,
            created_at=m.created_at,
            updated_at=m.updated_at,
            model=m,
        )

    @strawberry.field
    async def patient(self, info: Info) -> Patient | None:
        row = await info.context.loaders.patient.load(self.model.patient_id)
        return Patient.from_model(row) if row else None

    @strawberry.field
    async def counselor(self, info: Info) -> User | None:
        row = await info.context.loaders.user.load(self.model.counselor_id)
        return User.from_model(row) if row else None

    @strawberry.field(
        description="Counseling notes; only the counselor holding the session may read them"
    )
    def notes(self, info: Info) -> str | None:
        return session_service.read_notes(info.context, self.model)
