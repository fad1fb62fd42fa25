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
    from schema.documents import PatientDocument
    from schema.integrations import ClinicIntegration
    from schema.payments import Payment

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


async def patient_connection(info: Info, page: Page[models.Patient]) -> Connection[Patient]:
    # Rows already fetched are primed, so `session.patient` below them costs no query.
    for row in page.items:
        info.context.loaders.patient.prime(row.id, row)
    conn: Connection[Patient] = connection(page, Patient)  # type: ignore[arg-type]
    if conn.nodes:
        await _prefetch_sessions(info, conn.nodes)
    return conn


def _subfields(selection_set: Any, name: str, fragments: dict[str, Any]) -> list[Any]:
    """The field nodes named `name` in a selection set (through fragments)."""
    found: list[Any] = []
    if selection_set is None:
        return found
    for sel in selection_set.selections:
        kind = sel.kind
        if kind == "field":
            if sel.name.value == name:
                found.append(sel)
        elif kind == "inline_fragment":
            found += _subfields(sel.selection_set, name, fragments)
        elif kind == "fragment_spread":
            frag = fragments.get(sel.name.value)
            if frag is not None:
                found += _subfields(frag.selection_set, name, fragments)
    return found


async def _prefetch_sessions(info: Info, patients: list[Patient]) -> None:
    """Look ahead: when the page's nodes select `sessions` (one alias), load every patient's
    sessions now, in the same one statement the loader would send, and hand each Patient its
    list, so `Patient.sessions` resolves synchronously. Other shapes use the loader as before.
    """
    from gateway.services.pagination import check_page_size

    raw = info._raw_info
    frags = raw.fragments
    node_sets: list[Any] = []
    for field_node in raw.field_nodes:
        for edges in _subfields(field_node.selection_set, "edges", frags):
            node_sets += _subfields(edges.selection_set, "node", frags)
        node_sets += _subfields(field_node.selection_set, "nodes", frags)
    sessions = [s for n in node_sets for s in _subfields(n.selection_set, "sessions", frags)]
    if not sessions or len({(s.alias or s.name).value for s in sessions}) != 1:
        return
    field_def = raw.schema.get_type("Patient").fields["sessions"]  # type: ignore[union-attr]
    variables = getattr(raw.variable_values, "coerced", raw.variable_values) or {}
    args = {name: arg.default_value for name, arg in field_def.args.items()}
    for arg_node in sessions[0].arguments or ():
        value = arg_node.value
        if value.kind == "variable":
            if value.name.value in variables:
                args[arg_node.name.value] = variables[value.name.value]
        elif value.kind == "int_value":
            args[arg_node.name.value] = int(value.value)
        elif value.kind == "boolean_value":
            args[arg_node.name.value] = value.value
        else:
            return  # a shape the look-ahead does not read: left to the resolver's loader
    first, newest_first = args.get("first"), args.get("newestFirst")
    if args.get("status") or not isinstance(first, int) or not isinstance(newest_first, bool):
        return  # a status filter (or anything unexpected): left to the resolver's loader
    try:
        check_page_size(first, info.context.settings.max_page_size)
    except Exception:
        return  # the resolver reports it, field by field, as before
    with_counselor = any(_selects(s.selection_set, "counselor", frags) for s in sessions)
    loaders = info.context.loaders
    key = (first, newest_first, (), with_counselor)
    loader = loaders.sessions_of_patient(*key)
    lists = await loader.load_many([p.row_id for p in patients])
    for patient, rows in zip(patients, lists, strict=True):
        patient.prefetched_sessions = (key, _session_objects(loaders, rows, with_counselor))


def _session_objects(
    loaders: Any, rows: list[Any], with_counselor: bool
) -> list[CounselingSession]:
    if not with_counselor:
        return [CounselingSession.from_model(s) for s in rows]
    users = loaders.user_objects  # one User per counselor and request, not per session
    out = []
    for s, row in rows:
        counselor = None
        if row is not None:
            counselor = users.get(row.id)
            if counselor is None:
                counselor = users[row.id] = User.from_model(row)
        out.append(CounselingSession.from_model(s, counselor))
    return out


def selects(info: Info, name: str) -> bool:
    """Does the current field's selection ask for the subfield `name` (fragments included)?

    Answered once per request and selection: a list of 50 patients asks once, not 50 times.
    """
    raw = info._raw_info
    key = (id(raw.field_nodes[0]), name)
    cache = info.context.loaders.lookahead
    if key not in cache:
        cache[key] = any(
            _selects(node.selection_set, name, raw.fragments) for node in raw.field_nodes
        )
    return cache[key]


def _selects(selection_set: Any, name: str, fragments: dict[str, Any]) -> bool:
    if selection_set is None:
        return False
    for sel in selection_set.selections:
        kind = sel.kind
        if kind == "field":
            if sel.name.value == name:
                return True
        elif kind == "inline_fragment":
            if _selects(sel.selection_set, name, fragments):
                return True
        elif kind == "fragment_spread":
            frag = fragments.get(sel.name.value)
            if frag is not None and _selects(frag.selection_set, name, fragments):
                return True
    return False


_NOT_FETCHED: Any = object()


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
        return await patient_connection(info, page)

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
    # (loader key, sessions) when a list looked ahead and loaded them (_prefetch_sessions).
    prefetched_sessions: strawberry.Private[Any] = None

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
    def sessions(
        self,
        info: Info,
        first: int = 10,
        newest_first: bool = True,
        status: list[SessionStatus] | None = None,  # type: ignore[valid-type]
    ) -> list[CounselingSession]:
        # Synchronous when the list above prefetched exactly this (no coroutine or task).
        with_counselor = selects(info, "counselor")
        pre = self.prefetched_sessions
        if pre is not None and pre[0] == (first, newest_first, tuple(status or ()), with_counselor):
            return pre[1]  # type: ignore[no-any-return]
        return self._load_sessions(info, first, newest_first, status, with_counselor)  # type: ignore[return-value]

    async def _load_sessions(
        self,
        info: Info,
        first: int,
        newest_first: bool,
        status: list[SessionStatus] | None,  # type: ignore[valid-type]
        with_counselor: bool,
    ) -> list[CounselingSession]:
        from gateway.services.pagination import check_page_size

        check_page_size(first, info.context.settings.max_page_size)
        # Look-ahead: when `counselor` is selected the counselors come with the sessions
        # (same statement), so each session's `counselor` resolves synchronously.
        loaders = info.context.loaders
        loader = loaders.sessions_of_patient(first, newest_first, status, with_counselor)
        return _session_objects(loaders, await loader.load(self.row_id), with_counselor)

    @strawberry.field(description="The patient's documents, newest first (not deleted ones)")
    async def documents(
        self, info: Info
    ) -> list[Annotated[PatientDocument, strawberry.lazy("schema.documents")]]:
        from schema.documents import patient_documents

        return await patient_documents(info, self.row_id)  # type: ignore[return-value]

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
    # The counselor when it was fetched with the session (None: not visible to the caller).
    prefetched_counselor: strawberry.Private[User | None] = _NOT_FETCHED

    @classmethod
    def from_model(
        cls, m: models.CounselingSession, counselor: User | None = _NOT_FETCHED
    ) -> CounselingSession:
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
            prefetched_counselor=counselor,
        )

    @strawberry.field
    async def patient(self, info: Info) -> Patient | None:
        row = await info.context.loaders.patient.load(self.model.patient_id)
        return Patient.from_model(row) if row else None

    @strawberry.field
    def counselor(self, info: Info) -> User | None:
        # Synchronous when prefetched: no coroutine, loader future or task per session.
        if self.prefetched_counselor is not _NOT_FETCHED:
            return self.prefetched_counselor
        return self._load_counselor(info)  # type: ignore[return-value]  # an awaitable

    async def _load_counselor(self, info: Info) -> User | None:
        row = await info.context.loaders.user.load(self.model.counselor_id)
        return User.from_model(row) if row else None

    @strawberry.field(
        description="Counseling notes; only the counselor holding the session may read them"
    )
    def notes(self, info: Info) -> str | None:
        return session_service.read_notes(info.context, self.model)

    @strawberry.field(description="The latest payment attempt for this session, if any")
    async def payment(
        self, info: Info
    ) -> Annotated[Payment, strawberry.lazy("schema.payments")] | None:
        from schema.payments import session_payment

        return await session_payment(info, self.model)
