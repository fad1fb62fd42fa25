"""The role matrix as users notice it: what each role sees, reads and may change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent, User
from gateway.db.tenancy import TenantScope
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import PASSWORD, World

PATIENTS = "{ patients(first: 100, archived: null) { nodes { id firstName lastName archived } } }"
PATIENT = "query($id: ID!) { patient(id: $id) { id fullName } }"
SESSIONS = "{ sessions(first: 100) { nodes { id startsAt status } } }"
SESSION = "query($id: ID!) { session(id: $id) { id status } }"
NOTES = "query($id: ID!) { session(id: $id) { id notes } }"
SCHEDULE = """mutation($input: ScheduleSessionInput!) { scheduleSession(input: $input) { id } }"""
CREATE_USER = """mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id email role isActive clinic { slug } } invitationToken } }"""
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { email role } } }"""
ACCEPT = """mutation($token: String!, $password: String!) {
  acceptInvitation(token: $token, password: $password) { accessToken user { email role } } }"""
ME = "{ me { email role clinic { slug } } }"
NEW_PASSWORD = "a-brand-new-passphrase"


def gid(kind: str, row: Any) -> str:
    return to_global_id(kind, row.id)


def sid(row: Any) -> str:
    return to_global_id("CounselingSession", row.id)


async def ids(client: GraphQLClient, query: str, user: Any) -> list[str]:
    data = await client.data(query, user=user)
    return [n["id"] for n in next(iter(data.values()))["nodes"]]


async def book_for_counselor2(client: GraphQLClient, world: World) -> str:
    """A session of the second counselor with a patient who has no login."""
    a = world.a
    start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=3)
    data = await client.data(
        SCHEDULE,
        {
            "input": {
                "patientId": gid("Patient", a.patients[1]),
                "counselorId": gid("User", a.counselor2),
                "startsAt": start.isoformat(),
            }
        },
        user=a.admin,
    )
    return str(data["scheduleSession"]["id"])


async def count(database: Database, model: Any) -> int:
    """Rows of `model`; for the audit log only changes (reads are audited asynchronously)."""
    query = select(func.count()).select_from(model)
    if model is AuditEvent:
        query = query.where(~AuditEvent.action.like("%read"))
    async with database.transaction(TenantScope.cross_clinic()) as db:
        return int(await db.scalar(query) or 0)


# --- patients ---------------------------------------------------------------------------


async def test_patient_sees_only_their_own_record(client: GraphQLClient, world: World) -> None:
    """A patient's `patients` holds only themselves; other records (same clinic too): NOT_FOUND."""
    a = world.a
    assert await ids(client, PATIENTS, a.patient_user) == [gid("Patient", a.own_patient)]
    own = await client.data(PATIENT, {"id": gid("Patient", a.own_patient)}, user=a.patient_user)
    assert own["patient"]["fullName"] == "Pat0 ClinicA"
    for other in (a.patients[1], world.b.own_patient):
        code = await client.error_code(PATIENT, {"id": gid("Patient", other)}, user=a.patient_user)
        assert code == "NOT_FOUND"


async def test_patient_sees_only_their_own_sessions(client: GraphQLClient, world: World) -> None:
    """Another patient's session (same clinic) is invisible to a patient: absent and NOT_FOUND."""
    a = world.a
    other = await book_for_counselor2(client, world)
    mine = sorted([sid(a.past_session), sid(a.upcoming_session)])
    assert sorted(await ids(client, SESSIONS, a.patient_user)) == mine
    assert await client.error_code(SESSION, {"id": other}, user=a.patient_user) == "NOT_FOUND"
    own = await client.data(SESSION, {"id": sid(a.past_session)}, user=a.patient_user)
    assert own["session"]["status"] == "COMPLETED"


async def test_patient_never_reads_notes_even_of_own_session(
    client: GraphQLClient, world: World
) -> None:
    """`notes` is FORBIDDEN to the patient, directly and through their record; no text leaks."""
    a = world.a
    body = await client.execute(NOTES, {"id": sid(a.past_session)}, user=a.patient_user)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["session", "notes"]
    assert "private notes" not in str(body)
    nested = "query($id: ID!) { patient(id: $id) { sessions { notes } } }"
    variables = {"id": gid("Patient", a.own_patient)}
    assert await client.error_code(nested, variables, user=a.patient_user) == "FORBIDDEN"


def patient_writes(world: World) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every write a patient might try on their own record and sessions."""
    a, start = world.a, (datetime.now(UTC) + timedelta(days=4)).isoformat()
    own, upcoming = gid("Patient", a.own_patient), sid(a.upcoming_session)
    booking = {"patientId": own, "counselorId": gid("User", a.counselor), "startsAt": start}
    account = {"email": "friend@x.test", "fullName": "Friend", "role": "PATIENT"}
    return {
        "createPatient": (
            "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id } }",
            {"i": {"firstName": "Eve", "lastName": "Intruder"}},
        ),
        "updatePatient": (
            'mutation($id: ID!) { updatePatient(id: $id, input: {firstName: "Me"}) { id } }',
            {"id": own},
        ),
        "archivePatient": ("mutation($id: ID!) { archivePatient(id: $id) { id } }", {"id": own}),
        "scheduleSession": (SCHEDULE, {"input": booking}),
        "rescheduleSession": (
            "mutation($id: ID!, $t: DateTime!) { rescheduleSession(id: $id, startsAt: $t) { id } }",
            {"id": upcoming, "t": start},
        ),
        "cancelSession": (
            'mutation($id: ID!) { cancelSession(id: $id, reason: "no") { id } }',
            {"id": upcoming},
        ),
        "completeSession": (
            "mutation($id: ID!) { completeSession(id: $id, noShow: true) { id } }",
            {"id": sid(a.past_session)},
        ),
        "updateSessionNotes": (
            'mutation($id: ID!) { updateSessionNotes(id: $id, notes: "mine") { id } }',
            {"id": upcoming},
        ),
        "createUser": (CREATE_USER, {"input": account}),
    }


WRITES = [
    "createPatient",
    "updatePatient",
    "archivePatient",
    "scheduleSession",
    "rescheduleSession",
    "cancelSession",
    "completeSession",
    "updateSessionNotes",
    "createUser",
]


@pytest.mark.parametrize("mutation", WRITES)
async def test_patient_cannot_change_anything(
    client: GraphQLClient, world: World, database: Database, mutation: str
) -> None:
    """Every write a patient tries is FORBIDDEN; the clinic's data and audit log are unchanged."""
    a = world.a
    query, variables = patient_writes(world)[mutation]

    async def state() -> tuple[Any, ...]:
        seen = [await client.data(query, user=a.admin) for query in (PATIENTS, SESSIONS)]
        return (*seen, await count(database, AuditEvent), await count(database, User))

    before = await state()
    assert await client.error_code(query, variables, user=a.patient_user) == "FORBIDDEN"
    assert await state() == before
    notes = await client.data(NOTES, {"id": sid(a.upcoming_session)}, user=a.counselor)
    assert notes["session"]["notes"] is None


async def test_counselor_sees_every_patient_of_their_clinic_only(
    client: GraphQLClient, world: World
) -> None:
    """A counselor lists all three clinic-A patients, not only their own; clinic B's: NOT_FOUND."""
    a = world.a
    everyone = sorted(gid("Patient", p) for p in a.patients)
    assert sorted(await ids(client, PATIENTS, a.counselor2)) == everyone
    variables = {"id": gid("Patient", world.b.patients[1])}
    assert await client.error_code(PATIENT, variables, user=a.counselor2) == "NOT_FOUND"


# --- sessions and notes -------------------------------------------------------------------


async def test_counselor_sees_and_changes_only_own_sessions(
    client: GraphQLClient, world: World
) -> None:
    """counselor2's session is absent from counselor's list, NOT_FOUND by id, and cannot be
    cancelled by them; counselor2 sees only it."""
    a = world.a
    other = await book_for_counselor2(client, world)
    assert sorted(await ids(client, SESSIONS, a.counselor)) == sorted(
        [sid(a.past_session), sid(a.upcoming_session)]
    )
    assert await ids(client, SESSIONS, a.counselor2) == [other]
    assert await client.error_code(SESSION, {"id": other}, user=a.counselor) == "NOT_FOUND"
    cancel = "mutation($id: ID!) { cancelSession(id: $id) { id } }"
    assert await client.error_code(cancel, {"id": other}, user=a.counselor) == "NOT_FOUND"
    assert (await client.data(SESSION, {"id": other}, user=a.counselor2))["session"]["status"] == (
        "SCHEDULED"
    )
    # Nested lists are fenced the same way: counselor2 sees none of counselor's sessions.
    nested = "query($id: ID!) { patient(id: $id) { sessions { id } } }"
    data = await client.data(nested, {"id": gid("Patient", a.own_patient)}, user=a.counselor2)
    assert data["patient"]["sessions"] == []


async def test_counselor_reads_notes_of_the_sessions_they_hold(
    client: GraphQLClient, world: World
) -> None:
    """The holding counselor reads the notes; a colleague cannot reach the session at all."""
    a = world.a
    data = await client.data(NOTES, {"id": sid(a.past_session)}, user=a.counselor)
    assert data["session"]["notes"] == "private notes a"
    for user, session in ((a.counselor2, a.past_session), (a.counselor, world.b.past_session)):
        assert await client.error_code(NOTES, {"id": sid(session)}, user=user) == "NOT_FOUND"


async def test_clinic_admin_sees_all_clinic_sessions_but_no_notes(
    client: GraphQLClient, world: World
) -> None:
    """The clinic admin lists every counselor's sessions; `notes` is FORBIDDEN; clinic B's
    admin cannot see clinic A's sessions."""
    a = world.a
    other = await book_for_counselor2(client, world)
    expected = sorted([sid(a.past_session), sid(a.upcoming_session), other])
    assert sorted(await ids(client, SESSIONS, a.admin)) == expected
    body = await client.execute(NOTES, {"id": sid(a.past_session)}, user=a.admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "private notes" not in str(body)
    assert await client.error_code(SESSION, {"id": sid(a.past_session)}, user=world.b.admin) == (
        "NOT_FOUND"
    )
    assert sid(a.past_session) not in await ids(client, SESSIONS, world.b.admin)


# --- platform admin and accounts ----------------------------------------------------------


async def test_platform_admin_manages_clinics_but_reads_no_clinical_data(
    client: GraphQLClient, world: World
) -> None:
    """Platform admin: lists and creates clinics and their admins; `patients`, `sessions` and
    `patient` are FORBIDDEN. A clinic admin may neither list nor create clinics."""
    root = world.platform_admin
    clinics = "{ clinics { slug } }"
    create = "mutation($i: CreateClinicInput!) { createClinic(input: $i) { id slug } }"
    made = await client.data(create, {"i": {"name": "Clinic C", "slug": "clinic-c"}}, user=root)
    slugs = [c["slug"] for c in (await client.data(clinics, user=root))["clinics"]]
    assert slugs == ["clinic-a", "clinic-b", "clinic-c"]
    new_admin = {
        "email": "admin@c.test",
        "fullName": "Admin C",
        "role": "CLINIC_ADMIN",
        "password": NEW_PASSWORD,
        "clinicId": made["createClinic"]["id"],
    }
    user = (await client.data(CREATE_USER, {"input": new_admin}, user=root))["createUser"]["user"]
    assert (user["role"], user["clinic"]) == ("CLINIC_ADMIN", {"slug": "clinic-c"})
    for query, variables in (
        (PATIENTS, {}),
        (SESSIONS, {}),
        (PATIENT, {"id": gid("Patient", world.a.own_patient)}),
    ):
        assert await client.error_code(query, variables, user=root) == "FORBIDDEN"
    assert await client.error_code(clinics, user=world.a.admin) == "FORBIDDEN"
    variables = {"i": {"name": "Rogue", "slug": "rogue"}}
    assert await client.error_code(create, variables, user=world.a.admin) == "FORBIDDEN"


async def login(client: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    return await client.execute(LOGIN, {"email": email, "password": password})


async def test_clinic_admin_creates_a_counselor_who_can_log_in(
    client: GraphQLClient, world: World
) -> None:
    """The new counselor belongs to the admin's clinic, logs in, and sees that clinic's patients."""
    a = world.a
    data = await client.data(
        CREATE_USER,
        {
            "input": {
                "email": "New.Counselor@A.test",
                "fullName": "New Counselor",
                "role": "COUNSELOR",
                "password": NEW_PASSWORD,
            }
        },
        user=a.admin,
    )
    assert data["createUser"]["invitationToken"] is None
    user = data["createUser"]["user"]
    user.pop("id")
    assert user == {
        "email": "new.counselor@a.test",
        "role": "COUNSELOR",
        "isActive": True,
        "clinic": {"slug": "clinic-a"},
    }
    body = await login(client, "new.counselor@a.test", NEW_PASSWORD)
    token = body["data"]["login"]["accessToken"]
    me = await client.data(ME, token=token)
    assert me["me"] == {
        "email": "new.counselor@a.test",
        "role": "COUNSELOR",
        "clinic": {"slug": "clinic-a"},
    }
    assert len((await client.data(PATIENTS, token=token))["patients"]["nodes"]) == 3


@pytest.mark.parametrize(
    ("who", "role", "other_clinic", "code"),
    [
        ("admin", "PLATFORM_ADMIN", False, "FORBIDDEN"),  # no one in a clinic mints platform admins
        ("admin", "COUNSELOR", True, "FORBIDDEN"),  # nor creates users in another clinic
        ("counselor", "COUNSELOR", False, "FORBIDDEN"),
        ("counselor", "PATIENT", False, "FORBIDDEN"),
        ("patient_user", "PATIENT", False, "FORBIDDEN"),
    ],
)
async def test_who_may_create_which_accounts(
    client: GraphQLClient,
    world: World,
    database: Database,
    who: str,
    role: str,
    other_clinic: bool,
    code: str,
) -> None:
    """Refused account creations return FORBIDDEN, create no user, and the email cannot log in."""
    before = await count(database, User)
    account = {
        "email": "someone@new.test",
        "fullName": "Someone",
        "role": role,
        "password": NEW_PASSWORD,
    }
    if other_clinic:
        account["clinicId"] = gid("Clinic", world.b.clinic)
    user = getattr(world.a, who)
    assert await client.error_code(CREATE_USER, {"input": account}, user=user) == code
    assert await count(database, User) == before
    assert (await login(client, "someone@new.test", NEW_PASSWORD))["errors"]


async def test_invitation_sets_the_password_once(client: GraphQLClient, world: World) -> None:
    """An invite (no password) returns a token; the account cannot log in until the invitation is
    accepted; accepting logs in; the same token cannot be used a second time."""
    a = world.a
    invite = {"email": "invitee@a.test", "fullName": "Invitee", "role": "PATIENT"}
    data = (await client.data(CREATE_USER, {"input": invite}, user=a.admin))["createUser"]
    token = data["invitationToken"]
    assert token and data["user"]["isActive"] is False
    refused = await login(client, "invitee@a.test", NEW_PASSWORD)
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    accepted = await client.data(ACCEPT, {"token": token, "password": NEW_PASSWORD})
    accepted = accepted["acceptInvitation"]
    assert accepted["user"] == {"email": "invitee@a.test", "role": "PATIENT"}
    assert (await client.data(ME, token=accepted["accessToken"]))["me"]["email"] == "invitee@a.test"
    assert not (await login(client, "invitee@a.test", NEW_PASSWORD)).get("errors")
    again = {"token": token, "password": "someone-elses-password"}
    assert await client.error_code(ACCEPT, again) == "VALIDATION"
    assert (await login(client, "invitee@a.test", "someone-elses-password"))["errors"]
    assert not (await login(client, "invitee@a.test", NEW_PASSWORD)).get("errors")


@pytest.mark.parametrize(
    "email", ["counselor@a.test", " COUNSELOR@A.TEST ", "patient@b.test", "root@platform.test"]
)
async def test_duplicate_email_is_a_conflict(
    client: GraphQLClient, world: World, database: Database, email: str
) -> None:
    """Emails are unique across all clinics, ignoring case and spaces: CONFLICT, nothing created,
    and the existing account still logs in with its own password."""
    before = await count(database, User)
    account = {"email": email, "fullName": "Copy", "role": "COUNSELOR", "password": NEW_PASSWORD}
    code = await client.error_code(CREATE_USER, {"input": account}, user=world.a.admin)
    assert code == "CONFLICT"
    assert await count(database, User) == before
    assert not (await login(client, email, PASSWORD)).get("errors")
