"""Counseling sessions through GraphQL: booking, moving, cancelling, completing, notes, lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.models import AuditEvent, CounselingSession, Modality, SessionStatus
from gateway.db.tenancy import TenantScope
from gateway.services.pagination import encode_cursor
from gateway.settings import Settings
from schema.ids import parse_global_id, to_global_id
from tests.conftest import GraphQLClient
from tests.factories import ClinicWorld, World

# Mutations select one nested object only: see test_mutation_result_with_patient_and_counselor.
FIELDS = (
    "id startsAt endsAt durationMinutes status modality cancelReason fee { amount currency }"
    " counselor { id }"
)
SCHEDULE = f"""mutation($input: ScheduleSessionInput!) {{
  scheduleSession(input: $input) {{ {FIELDS} }} }}"""
RESCHEDULE = f"""mutation($id: ID!, $startsAt: DateTime!, $duration: Int) {{
  rescheduleSession(id: $id, startsAt: $startsAt, durationMinutes: $duration) {{ {FIELDS} }} }}"""
CANCEL = f"""mutation($id: ID!, $reason: String) {{
  cancelSession(id: $id, reason: $reason) {{ {FIELDS} }} }}"""
COMPLETE = f"""mutation($id: ID!, $noShow: Boolean! = false, $notes: String) {{
  completeSession(id: $id, noShow: $noShow, notes: $notes) {{ {FIELDS} }} }}"""
UPDATE_NOTES = """mutation($id: ID!, $notes: String!) {
  updateSessionNotes(id: $id, notes: $notes) { id } }"""
GET = f"query($id: ID!) {{ session(id: $id) {{ {FIELDS} patient {{ id }} }} }}"
NOTES = "query($id: ID!) { session(id: $id) { notes } }"
LIST = """query($first: Int, $after: String, $from: DateTime, $to: DateTime,
               $counselorId: ID, $patientId: ID, $status: [SessionStatus!], $newestFirst: Boolean) {
  sessions(first: $first, after: $after, from: $from, to: $to, counselorId: $counselorId,
           patientId: $patientId, status: $status, newestFirst: $newestFirst) {
    nodes { id startsAt status } pageInfo { hasNextPage endCursor } } }"""

# Midnight UTC tomorrow, fixed for the whole run so a test never straddles a day boundary.
TOMORROW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def slot(days: int, hour: int, minute: int = 0) -> datetime:
    """`days` after today (UTC) at hour:minute; days >= 3 never meets the world's sessions."""
    return TOMORROW + timedelta(days=days - 1, hours=hour, minutes=minute)


def gid(kind: str, row: Any) -> str:
    return to_global_id(kind, row.id)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def booking(
    patient: Any, start: datetime | str, duration: int = 50, counselor: Any = None, **extra: Any
) -> dict[str, Any]:
    starts_at = start if isinstance(start, str) else start.isoformat()
    data = {
        "patientId": gid("Patient", patient),
        "startsAt": starts_at,
        "durationMinutes": duration,
        **extra,
    }
    if counselor is not None:
        data["counselorId"] = gid("User", counselor)
    return {"input": data}


async def book(client: GraphQLClient, user: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    return (await client.data(SCHEDULE, booking(*args, **kw), user=user))["scheduleSession"]


async def admin_books(
    client: GraphQLClient,
    cw: ClinicWorld,
    patient: Any,
    start: datetime,
    duration: int = 50,
    counselor: Any = None,
) -> dict[str, Any]:
    return await book(client, cw.admin, patient, start, duration, counselor or cw.counselor)


async def session_count(database: Database) -> int:
    async with database.transaction(TenantScope.cross_clinic()) as db:
        return int(await db.scalar(select(func.count()).select_from(CounselingSession)) or 0)


async def audit_rows(database: Database, action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.created_at)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        return list(await db.scalars(query))


async def past_scheduled(database: Database, cw: ClinicWorld) -> str:
    """A session that started two hours ago and is still open (the API cannot book the past)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        row = CounselingSession(
            clinic_id=cw.clinic.id,
            patient_id=cw.patients[1].id,
            counselor_id=cw.counselor.id,
            starts_at=start,
            ends_at=start + timedelta(minutes=50),
            duration_minutes=50,
            modality=Modality.VIDEO,
            status=SessionStatus.SCHEDULED,
            fee_amount=0,
            currency="USD",
        )
        db.add(row)
    return to_global_id("CounselingSession", row.id)


async def read(client: GraphQLClient, user: Any, session_id: str) -> dict[str, Any]:
    return (await client.data(GET, {"id": session_id}, user=user))["session"]


async def notes_of(client: GraphQLClient, user: Any, session_id: str) -> str | None:
    return (await client.data(NOTES, {"id": session_id}, user=user))["session"]["notes"]


async def test_admin_books_named_counselor_in_clinic_currency(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """A clinic admin books a 60-minute phone session for a counselor; the counselor sees it."""
    a, start = world.a, slot(3, 9)
    made = await book(
        client, a.admin, a.patients[1], start, 60, a.counselor, modality="PHONE", feeAmount=15000
    )
    assert when(made["startsAt"]) == start
    assert when(made["endsAt"]) == start + timedelta(minutes=60)
    assert (made["status"], made["modality"], made["durationMinutes"]) == ("SCHEDULED", "PHONE", 60)
    assert made["fee"] == {"amount": 15000, "currency": "USD"}
    assert made["counselor"]["id"] == gid("User", a.counselor)
    patient = {"id": gid("Patient", a.patients[1])}
    assert await read(client, a.counselor, made["id"]) == {**made, "patient": patient}
    [event] = await audit_rows(database, "session.scheduled")
    assert event.actor_user_id == a.admin.id
    assert event.target_id == str(parse_global_id(made["id"])[1])


async def test_who_holds_a_booked_session(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Admin without counselorId: VALIDATION; a non-counselor, another clinic's counselor or
    patient: NOT_FOUND; a counselor naming a colleague: FORBIDDEN (the colleague's calendar
    stays empty). A counselor's own booking is theirs, with or without their own id."""
    a, before = world.a, await session_count(database)
    at = slot(3, 9)
    cases = [
        (a.admin, booking(a.patients[1], at), "VALIDATION"),
        (a.counselor, booking(a.patients[1], at, counselor=a.counselor2), "FORBIDDEN"),
        (a.admin, booking(world.b.patients[1], at, counselor=a.counselor), "NOT_FOUND"),
    ]
    cases += [
        (a.admin, booking(a.patients[1], at, counselor=who), "NOT_FOUND")
        for who in (a.admin, a.patient_user, world.b.counselor)
    ]
    for user, variables, code in cases:
        assert await client.error_code(SCHEDULE, variables, user=user) == code
    assert await session_count(database) == before
    assert (await client.data(LIST, {}, user=a.counselor2))["sessions"]["nodes"] == []
    implicit = await book(client, a.counselor, a.patients[1], slot(3, 9))
    explicit = await book(client, a.counselor, a.patients[2], slot(3, 11), counselor=a.counselor)
    assert implicit["counselor"]["id"] == explicit["counselor"]["id"] == gid("User", a.counselor)


@pytest.mark.parametrize(
    ("offset", "duration", "counselor", "patient", "clash"),
    [
        (0, 50, "counselor", 2, "counselor"),  # same slot, same counselor
        (30, 50, "counselor", 2, "counselor"),  # overlaps the end
        (-30, 45, "counselor", 2, "counselor"),  # overlaps the start
        (-15, 120, "counselor", 2, "counselor"),  # encloses it
        (10, 15, "counselor", 2, "counselor"),  # inside it
        (20, 50, "counselor2", 1, "patient"),  # same patient, another counselor
        (50, 50, "counselor", 1, None),  # back to back, after
        (-50, 50, "counselor", 1, None),  # back to back, before
        (0, 50, "counselor2", 2, None),  # other counselor, other patient
    ],
)
async def test_double_booking_is_a_conflict_back_to_back_is_fine(
    client: GraphQLClient,
    world: World,
    database: Database,
    offset: int,
    duration: int,
    counselor: str,
    patient: int,
    clash: str | None,
) -> None:
    """A booking overlapping the counselor's or patient's 10:00-10:50 session is CONFLICT."""
    a, start = world.a, slot(4, 10)
    await admin_books(client, a, a.patients[1], start)
    before = await session_count(database)
    at = start + timedelta(minutes=offset)
    vars_ = booking(a.patients[patient], at, duration, getattr(a, counselor))
    body = await client.execute(SCHEDULE, vars_, user=a.admin)
    if clash is None:
        assert not body.get("errors") and await session_count(database) == before + 1
    else:
        extensions = body["errors"][0]["extensions"]
        assert (extensions["code"], extensions["clash"]) == ("CONFLICT", clash)
        assert await session_count(database) == before


async def test_overlap_is_detected_across_utc_offsets(client: GraphQLClient, world: World) -> None:
    """12:20+02:00 overlaps a 10:00Z-10:50Z session; 12:50+02:00 fits and comes back as 10:50Z."""
    a, start = world.a, slot(4, 10)
    await admin_books(client, a, a.patients[1], start)
    local = start.astimezone(timezone(timedelta(hours=2)))
    clash = booking(a.patients[2], (local + timedelta(minutes=20)).isoformat(), 50, a.counselor)
    assert await client.error_code(SCHEDULE, clash, user=a.admin) == "CONFLICT"
    made = await book(
        client, a.admin, a.patients[2], (local + timedelta(minutes=50)).isoformat(), 50, a.counselor
    )
    assert when(made["startsAt"]) == start + timedelta(minutes=50)
    # The answer is in UTC, exactly as every later read returns it.
    assert when(made["startsAt"]).utcoffset() == timedelta(0)
    assert made["startsAt"] == (await read(client, a.admin, made["id"]))["startsAt"]


@pytest.mark.parametrize(
    ("start", "duration", "code"),
    [
        ((datetime.now(UTC) - timedelta(hours=1)).isoformat(), 50, "VALIDATION"),  # the past
        (slot(3, 9).replace(tzinfo=None).isoformat(), 50, "VALIDATION"),  # no UTC offset
        (slot(3, 9).isoformat(), 14, "VALIDATION"),
        (slot(3, 9).isoformat(), 481, "VALIDATION"),
        (slot(3, 9).isoformat(), 0, "VALIDATION"),
        (slot(3, 9).isoformat(), 15, None),
        (slot(3, 9).isoformat(), 480, None),
    ],
)
async def test_booking_time_and_duration_rules(
    client: GraphQLClient,
    world: World,
    database: Database,
    start: str,
    duration: int,
    code: str | None,
) -> None:
    """Past start, missing offset, or duration outside 15..480: VALIDATION and nothing booked;
    exactly 15 and 480 minutes are fine."""
    before = await session_count(database)
    vars_ = booking(world.a.patients[1], start, duration, world.a.counselor)
    if code is None:
        made = (await client.data(SCHEDULE, vars_, user=world.a.admin))["scheduleSession"]
        assert made["durationMinutes"] == duration
        assert await session_count(database) == before + 1
    else:
        assert await client.error_code(SCHEDULE, vars_, user=world.a.admin) == code
        assert await session_count(database) == before


async def test_archived_patient_cannot_be_booked_until_unarchived(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Booking an archived patient is VALIDATION; after unarchiving it works."""
    a, pid = world.a, {"id": gid("Patient", world.a.patients[1])}
    await client.data("mutation($id: ID!) { archivePatient(id: $id) { id } }", pid, user=a.admin)
    before = await session_count(database)
    vars_ = booking(a.patients[1], slot(3, 9), counselor=a.counselor)
    assert await client.error_code(SCHEDULE, vars_, user=a.admin) == "VALIDATION"
    assert await session_count(database) == before
    await client.data("mutation($id: ID!) { unarchivePatient(id: $id) { id } }", pid, user=a.admin)
    assert (await client.data(SCHEDULE, vars_, user=a.admin))["scheduleSession"]["status"] == (
        "SCHEDULED"
    )


async def move(
    client: GraphQLClient, user: Any, session_id: str, start: datetime, duration: int | None = None
) -> dict[str, Any]:
    variables = {"id": session_id, "startsAt": start.isoformat(), "duration": duration}
    return (await client.data(RESCHEDULE, variables, user=user))["rescheduleSession"]


async def test_reschedule_moves_the_session_and_keeps_history(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """A 15-minute shift (overlapping its own old slot), a longer move with a new duration and
    a move keeping that duration leave three audit rows with from/to; the old slot is free."""
    a = world.a
    made = await admin_books(client, a, a.patients[1], slot(5, 9))
    shifted = await move(client, a.admin, made["id"], slot(5, 9, 15))
    assert when(shifted["startsAt"]) == slot(5, 9, 15)
    moved = await move(client, a.counselor, made["id"], slot(5, 14), 30)
    assert when(moved["startsAt"]) == slot(5, 14) and when(moved["endsAt"]) == slot(5, 14, 30)
    again = await move(client, a.admin, made["id"], slot(6, 9))
    assert again["durationMinutes"] == 30 and when(again["startsAt"]) == slot(6, 9)
    patient = {"id": gid("Patient", a.patients[1])}
    assert await read(client, a.admin, made["id"]) == {**again, "patient": patient}
    history = [e.details for e in await audit_rows(database, "session.rescheduled")]
    steps = [(when(d["from"]), when(d["to"]), d["fromDuration"], d["toDuration"]) for d in history]
    assert steps == [
        (slot(5, 9), slot(5, 9, 15), 50, 50),
        (slot(5, 9, 15), slot(5, 14), 50, 30),
        (slot(5, 14), slot(6, 9), 30, 30),
    ]
    await admin_books(client, a, a.patients[2], slot(5, 9))  # the original slot is free again


@pytest.mark.parametrize(
    ("target", "code"), [("busy", "CONFLICT"), ("past", "VALIDATION"), ("cancelled", "CONFLICT")]
)
async def test_failed_reschedule_changes_nothing(
    client: GraphQLClient, world: World, database: Database, target: str, code: str
) -> None:
    """Into another session: CONFLICT; into the past: VALIDATION; a cancelled one: CONFLICT."""
    a = world.a
    made = await admin_books(client, a, a.patients[1], slot(5, 9))
    await admin_books(client, a, a.patients[2], slot(5, 11))
    if target == "cancelled":
        await client.data(CANCEL, {"id": made["id"]}, user=a.admin)
    start = slot(-1, 9) if target == "past" else slot(5, 11, 30)
    before = await read(client, a.admin, made["id"])
    variables = {"id": made["id"], "startsAt": start.isoformat()}
    assert await client.error_code(RESCHEDULE, variables, user=a.admin) == code
    assert await read(client, a.admin, made["id"]) == before
    assert await audit_rows(database, "session.rescheduled") == []


async def test_cancel_with_reason_once_frees_the_slot(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Cancelling records the reason and frees the slot for the same counselor and patient;
    cancelling again is CONFLICT; a 501-character reason is VALIDATION."""
    a = world.a
    sid = (await admin_books(client, a, a.patients[1], slot(5, 9)))["id"]
    too_long = {"id": sid, "reason": "x" * 501}
    assert await client.error_code(CANCEL, too_long, user=a.admin) == "VALIDATION"
    assert (await read(client, a.admin, sid))["status"] == "SCHEDULED"
    done = await client.data(CANCEL, {"id": sid, "reason": "  Patient unwell "}, user=a.counselor)
    assert done["cancelSession"]["status"] == "CANCELLED"
    assert done["cancelSession"]["cancelReason"] == "Patient unwell"
    assert await client.error_code(CANCEL, {"id": sid}, user=a.admin) == "CONFLICT"
    assert len(await audit_rows(database, "session.cancelled")) == 1
    rebooked = await admin_books(client, a, a.patients[1], slot(5, 9))
    assert rebooked["id"] != sid and rebooked["status"] == "SCHEDULED"


async def test_complete_with_notes_then_not_again(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Completing tomorrow's session is VALIDATION (it stays scheduled); the counselor completes a
    past one with notes and reads them back; completing it again (as a no-show) is CONFLICT."""
    a = world.a
    upcoming = gid("CounselingSession", a.upcoming_session)
    assert await client.error_code(COMPLETE, {"id": upcoming}, user=a.counselor) == "VALIDATION"
    assert (await read(client, a.counselor, upcoming))["status"] == "SCHEDULED"
    sid = await past_scheduled(database, a)
    done = await client.data(COMPLETE, {"id": sid, "notes": "Discussed IVF."}, user=a.counselor)
    assert done["completeSession"]["status"] == "COMPLETED"
    assert await notes_of(client, a.counselor, sid) == "Discussed IVF."
    again = {"id": sid, "noShow": True}
    assert await client.error_code(COMPLETE, again, user=a.counselor) == "CONFLICT"
    assert len(await audit_rows(database, "session.completed")) == 1


async def test_admin_marks_no_show_but_cannot_attach_notes(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """A clinic admin completing with notes is FORBIDDEN and the whole change is rolled back
    (still SCHEDULED); noShow without notes marks it NO_SHOW and audits it."""
    sid = await past_scheduled(database, world.a)
    variables = {"id": sid, "notes": "n", "noShow": True}
    assert await client.error_code(COMPLETE, variables, user=world.a.admin) == "FORBIDDEN"
    assert (await read(client, world.a.admin, sid))["status"] == "SCHEDULED"
    done = await client.data(COMPLETE, {"id": sid, "noShow": True}, user=world.a.admin)
    assert done["completeSession"]["status"] == "NO_SHOW"
    events = await audit_rows(database, "session.no_show")
    assert [e.target_id for e in events] == [str(parse_global_id(sid)[1])]


async def test_notes_are_encrypted_at_rest_and_replaceable(
    client: GraphQLClient, world: World, database: Database, settings: Settings
) -> None:
    """updateSessionNotes stores ciphertext only; the counselor reads plaintext; blank clears."""
    a, sid = world.a, gid("CounselingSession", world.a.upcoming_session)
    secret = "Partner disagrees about donor eggs"
    await client.data(UPDATE_NOTES, {"id": sid, "notes": secret}, user=a.counselor)
    assert await notes_of(client, a.counselor, sid) == secret
    column = select(CounselingSession.notes_encrypted)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        raw = await db.scalar(column.where(CounselingSession.id == a.upcoming_session.id))
    assert raw and secret not in raw and "donor" not in raw
    assert DataCipher(settings.encryption_keys).decrypt(raw) == secret
    too_long = {"id": sid, "notes": "x" * 20_001}
    assert await client.error_code(UPDATE_NOTES, too_long, user=a.counselor) == "VALIDATION"
    by_admin = {"id": sid, "notes": "admin"}
    assert await client.error_code(UPDATE_NOTES, by_admin, user=a.admin) == "FORBIDDEN"
    assert await notes_of(client, a.counselor, sid) == secret
    await client.data(UPDATE_NOTES, {"id": sid, "notes": "  "}, user=a.counselor)
    assert await notes_of(client, a.counselor, sid) is None


async def calendar(client: GraphQLClient, a: ClinicWorld) -> dict[str, str]:
    """Sessions around day 7 (a counselor's "day view"), by label."""
    plan = {
        "eve": (a.patients[1], slot(6, 23), a.counselor),
        "midnight": (a.patients[2], slot(7, 0), a.counselor),
        "nine": (a.patients[1], slot(7, 9), a.counselor),
        "eleven": (a.patients[2], slot(7, 11), a.counselor),
        "other": (a.patients[2], slot(7, 13), a.counselor2),
        "next": (a.patients[1], slot(8, 0), a.counselor),
    }
    return {k: (await admin_books(client, a, p, t, 50, c))["id"] for k, (p, t, c) in plan.items()}


async def ids(client: GraphQLClient, user: Any, **variables: Any) -> list[str]:
    variables.setdefault("first", 100)
    page = (await client.data(LIST, variables, user=user))["sessions"]
    return [n["id"] for n in page["nodes"]]


async def test_day_view_and_filters(client: GraphQLClient, world: World) -> None:
    """`from` is inclusive, `to` exclusive; counselorId, patientId, status and newestFirst
    filter and order; another clinic sees none of it."""
    a = world.a
    s = await calendar(client, a)
    day = {"from": slot(7, 0).isoformat(), "to": slot(8, 0).isoformat()}
    mine = {**day, "counselorId": gid("User", a.counselor)}
    assert await ids(client, a.admin, **mine) == [s["midnight"], s["nine"], s["eleven"]]
    assert await ids(client, a.counselor, **day) == [s["midnight"], s["nine"], s["eleven"]]
    assert await ids(client, a.admin, **day) == [s["midnight"], s["nine"], s["eleven"], s["other"]]
    newest = await ids(client, a.admin, **mine, newestFirst=True)
    assert newest == [s["eleven"], s["nine"], s["midnight"]]
    of_patient = await ids(client, a.admin, patientId=gid("Patient", a.patients[1]))
    assert of_patient == [s["eve"], s["nine"], s["next"]]
    await client.data(CANCEL, {"id": s["eleven"]}, user=a.admin)
    assert await ids(client, a.admin, status=["CANCELLED"]) == [s["eleven"]]
    assert await ids(client, a.admin, **mine, status=["SCHEDULED"]) == [s["midnight"], s["nine"]]
    completed = await ids(client, a.admin, status=["COMPLETED"])
    assert completed == [gid("CounselingSession", a.past_session)]
    assert await ids(client, world.b.admin, **day) == []


@pytest.mark.parametrize("newest_first", [False, True])
async def test_sessions_pagination_walks_all_pages(
    client: GraphQLClient, world: World, newest_first: bool
) -> None:
    """Pages of 3 cover every visible session once, in the order of one big page."""
    await calendar(client, world.a)
    everything = await ids(client, world.a.admin, newestFirst=newest_first)
    assert len(everything) == 8
    walked: list[str] = []
    after = None
    while True:
        variables = {"first": 3, "after": after, "newestFirst": newest_first}
        page = (await client.data(LIST, variables, user=world.a.admin))["sessions"]
        walked += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert walked == everything and len(set(walked)) == 8
    full = await client.data(LIST, {"first": 100, "newestFirst": newest_first}, user=world.a.admin)
    starts = [when(n["startsAt"]) for n in full["sessions"]["nodes"]]
    assert starts == sorted(starts, reverse=newest_first)


@pytest.mark.parametrize(
    "variables",
    [
        {"from": slot(8, 0).isoformat(), "to": slot(7, 0).isoformat()},  # from after to
        {"from": slot(7, 0).isoformat(), "to": slot(7, 0).isoformat()},  # empty range
        {"from": slot(7, 0).replace(tzinfo=None).isoformat(), "to": slot(8, 0).isoformat()},
        {"to": slot(8, 0).replace(tzinfo=None).isoformat()},  # no offset
        {"after": "garbage"},
        {"after": encode_cursor([1, 2])},  # forged cursor of the right length
        {"after": encode_cursor(["ClinicA", "Pat0", str(uuid.uuid4())])},  # a patients cursor
        {"first": 0},
        {"first": 101},
        {"counselorId": to_global_id("Patient", uuid.uuid4())},
    ],
)
async def test_bad_list_arguments_are_validation_errors(
    client: GraphQLClient, world: World, variables: dict[str, Any]
) -> None:
    """Bad ranges, cursors, page sizes and ids on `sessions` are VALIDATION, never INTERNAL."""
    assert await client.error_code(LIST, variables, user=world.a.admin) == "VALIDATION"


async def test_mutation_result_with_patient_and_counselor(
    client: GraphQLClient, world: World
) -> None:
    """cancelSession answering with both `patient` and `counselor` resolves both: after the
    commit, two dataloaders reach for the database at once."""
    a = world.a
    query = "mutation($id: ID!) { cancelSession(id: $id) { patient { id } counselor { id } } }"
    variables = {"id": gid("CounselingSession", a.upcoming_session)}
    data = await client.data(query, variables, user=a.counselor)
    assert data["cancelSession"] == {
        "patient": {"id": gid("Patient", a.own_patient)},
        "counselor": {"id": gid("User", a.counselor)},
    }
