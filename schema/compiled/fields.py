"""What each compilable field is: a value read off its row, an object the row already holds,
or an object fetched for every row of a level at once.

Sources are the rows the services and loaders return (ORM models), so permission filters,
audit of patient reads and page-size limits stay exactly where the resolvers have them.
A field missing from these tables sends its whole query to the ordinary executor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from gateway.db import models
from gateway.services import clinics as clinic_service
from gateway.services import patients as patient_service
from gateway.services import sessions as session_service
from gateway.services import users as user_service
from gateway.services.pagination import Page, check_page_size
from schema.ids import from_global_id, to_global_id

if TYPE_CHECKING:
    from schema.compiled.plan import ObjectPlan
    from schema.compiled.run import Run


class Leaf(NamedTuple):
    """A scalar or enum read off the source (`columns`: the row columns it reads)."""

    get: Callable[[Any], Any]
    columns: tuple[str, ...] = ()


class Held(NamedTuple):
    """An object (or list) the source already holds: no I/O."""

    get: Callable[[Any], Any]
    columns: tuple[str, ...] = ()


class Fetched(NamedTuple):
    """Objects fetched for all of a level's sources at once: one value per source."""

    fetch: Callable[[Run, list[Any], dict[str, Any], ObjectPlan], Awaitable[list[Any]]]
    columns: tuple[str, ...] = ()


class Root(NamedTuple):
    """A root query field: the service call its resolver makes."""

    fetch: Callable[[Run, dict[str, Any], ObjectPlan], Awaitable[Any]]


Field = Leaf | Held | Fetched


def _global_id(type_name: str) -> Leaf:
    def get(row: Any) -> str:
        return to_global_id(type_name, row.id)

    return Leaf(get, ("id",))


def _columns(*names: str) -> dict[str, Field]:
    """Leaves read straight off the row: GraphQL name -> attribute (camelCase -> snake_case)."""
    out: dict[str, Field] = {}
    for name in names:
        attr = "".join("_" + c.lower() if c.isupper() else c for c in name)
        out[name] = Leaf(attrgetter(attr), (attr,))
    return out


# --- relations: each fetches for a whole level, through the request's loaders ------------


async def _patient_sessions(
    run: Run, patients: list[models.Patient], args: dict[str, Any], sub: ObjectPlan
) -> list[list[models.CounselingSession]]:
    first, newest_first, statuses = args["first"], args["newestFirst"], args.get("status")
    check_page_size(first, run.ctx.settings.max_page_size)
    # Counselors selected below: they come in the sessions' statement (the loader's join).
    with_counselor = sub.selects("counselor")
    lists = await run.loaders.fetch_patient_session_rows(
        [p.id for p in patients],
        params=(first, newest_first, tuple(statuses or ()), with_counselor),
        columns=sub.columns,
        counselor_columns=sub.sub_columns("counselor"),
    )
    if not with_counselor:
        return lists
    joined = run.counselors
    out = []
    for rows in lists:
        sessions = []
        for session, counselor in rows:
            joined[id(session)] = (session, counselor)  # holding the row keeps its id unique
            sessions.append(session)
        out.append(sessions)
    return out


async def _session_counselors(
    run: Run, sessions: list[models.CounselingSession], args: dict[str, Any], sub: ObjectPlan
) -> list[models.User | None]:
    joined = run.counselors
    missing = [s.counselor_id for s in sessions if id(s) not in joined]
    if not missing:  # all came with their sessions (the usual case)
        return [joined[id(s)][1] for s in sessions]
    rows = await run.loaders.user.load_many(list(dict.fromkeys(missing)))
    found = {u.id: u for u in rows if u is not None}
    return [joined[id(s)][1] if id(s) in joined else found.get(s.counselor_id) for s in sessions]


async def _session_patients(
    run: Run, sessions: list[models.CounselingSession], args: dict[str, Any], sub: ObjectPlan
) -> list[models.Patient | None]:
    # The patient loader: primed by a patients page, and audits each nested patient read.
    rows = await run.loaders.patient.load_many(list(dict.fromkeys(s.patient_id for s in sessions)))
    found = {p.id: p for p in rows if p is not None}
    return [found.get(s.patient_id) for s in sessions]


async def _user_clinics(
    run: Run, users: list[models.User], args: dict[str, Any], sub: ObjectPlan
) -> list[models.Clinic | None]:
    ids = list(dict.fromkeys(u.clinic_id for u in users if u.clinic_id is not None))
    found = {c.id: c for c in await run.loaders.clinic.load_many(ids) if c is not None}
    return [found.get(u.clinic_id) if u.clinic_id is not None else None for u in users]


# --- root fields: the same service calls as schema.queries ------------------------------


async def _me(run: Run, args: dict[str, Any], sub: ObjectPlan) -> models.User:
    return await user_service.get_user(run.ctx, run.ctx.require_principal().user_id)


async def _patients(run: Run, args: dict[str, Any], sub: ObjectPlan) -> Page[models.Patient]:
    page = await patient_service.list_patients(
        run.ctx,
        first=args["first"],
        after=args.get("after"),
        search=args.get("search"),
        archived=args.get("archived"),
        plain_rows=True,
    )
    for row in page.items:  # `session.patient` below the page costs no query (as in the resolver)
        run.loaders.patient.prime(row.id, row)
    return page


async def _patient(run: Run, args: dict[str, Any], sub: ObjectPlan) -> models.Patient:
    return await patient_service.get_patient(run.ctx, from_global_id(args["id"], "Patient"))


async def _sessions(run: Run, args: dict[str, Any], sub: ObjectPlan) -> Page[Any]:
    from schema.queries import session_filter_from  # schema.queries imports the whole schema

    flt = session_filter_from(
        args.get("from"),
        args.get("to"),
        args.get("counselorId"),
        args.get("patientId"),
        args.get("status"),
    )
    return await session_service.list_sessions(
        run.ctx, flt, first=args["first"], after=args.get("after"), newest_first=args["newestFirst"]
    )


async def _session(run: Run, args: dict[str, Any], sub: ObjectPlan) -> models.CounselingSession:
    return await session_service.get_session(
        run.ctx, from_global_id(args["id"], "CounselingSession")
    )


async def _clinic(run: Run, args: dict[str, Any], sub: ObjectPlan) -> models.Clinic:
    if args.get("id") is None:
        return await clinic_service.own_clinic(run.ctx)
    return await clinic_service.get_clinic(run.ctx, from_global_id(args["id"], "Clinic"))


ROOTS: dict[str, Root] = {
    "me": Root(_me),
    "patients": Root(_patients),
    "patient": Root(_patient),
    "sessions": Root(_sessions),
    "session": Root(_session),
    "clinic": Root(_clinic),
}


def _connection(node_type: str) -> dict[str, dict[str, Field]]:
    """A Connection over a Page: edges are (cursor, row) pairs, pageInfo is the page."""
    return {
        f"{node_type}Connection": {
            "edges": Held(lambda page: list(zip(page.cursors, page.items, strict=True))),
            "nodes": Held(attrgetter("items")),
            "pageInfo": Held(lambda page: page),
        },
        f"{node_type}Edge": {"cursor": Leaf(itemgetter(0)), "node": Held(itemgetter(1))},
    }


def _emr_link(patient: models.Patient) -> tuple[str, str] | None:
    if patient.emr_system and patient.emr_id:
        return (patient.emr_system, patient.emr_id)
    return None


TYPES: dict[str, dict[str, Field]] = {
    "Patient": {
        "id": (_global_id("Patient")),
        **_columns(
            "firstName",
            "lastName",
            "dateOfBirth",
            "email",
            "phone",
            "archived",
            "createdAt",
            "updatedAt",
        ),
        "fullName": Leaf(lambda p: f"{p.first_name} {p.last_name}", ("first_name", "last_name")),
        "emr": Held(_emr_link, ("emr_system", "emr_id")),
        "sessions": Fetched(_patient_sessions),
    },
    "CounselingSession": {
        "id": (_global_id("CounselingSession")),
        **_columns(
            "startsAt",
            "endsAt",
            "durationMinutes",
            "modality",
            "status",
            "cancelReason",
            "createdAt",
            "updatedAt",
        ),
        "fee": Held(lambda s: (s.fee_amount, s.currency), ("fee_amount", "currency")),
        "counselor": Fetched(_session_counselors, ("counselor_id",)),
        "patient": Fetched(_session_patients, ("patient_id",)),
    },
    "User": {
        "id": (_global_id("User")),
        **_columns("email", "fullName", "role", "isActive"),
        "clinic": Fetched(_user_clinics, ("clinic_id",)),
    },
    "Clinic": {
        "id": (_global_id("Clinic")),
        **_columns("name", "slug", "timezone", "currency", "createdAt"),
    },
    "Money": {"amount": Leaf(itemgetter(0)), "currency": Leaf(itemgetter(1))},
    "EmrLink": {"system": Leaf(itemgetter(0)), "id": Leaf(itemgetter(1))},
    "PageInfo": {
        "hasNextPage": Leaf(attrgetter("has_next_page")),
        "endCursor": Leaf(attrgetter("end_cursor")),
    },
    **_connection("Patient"),
    **_connection("CounselingSession"),
}
