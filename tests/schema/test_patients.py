"""Patients through GraphQL: create, update, archive, list, search, paginate, validate, audit."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.services.pagination import encode_cursor
from schema.ids import parse_global_id, to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World

FIELDS = "id firstName lastName fullName dateOfBirth email phone archived emr { system id }"
CREATE = f"mutation($input: CreatePatientInput!) {{ createPatient(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $input: UpdatePatientInput!) {{
  updatePatient(id: $id, input: $input) {{ {FIELDS} }} }}"""
ARCHIVE = f"mutation($id: ID!) {{ archivePatient(id: $id) {{ {FIELDS} }} }}"
UNARCHIVE = f"mutation($id: ID!) {{ unarchivePatient(id: $id) {{ {FIELDS} }} }}"
GET = f"query($id: ID!) {{ patient(id: $id) {{ {FIELDS} }} }}"
LIST = """
query($first: Int, $after: String, $search: String, $archived: Boolean) {
  patients(first: $first, after: $after, search: $search, archived: $archived) {
    nodes { id firstName lastName email archived }
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def pid(patient: Any) -> str:
    return to_global_id("Patient", patient.id)


def row_id(global_id: str) -> uuid.UUID:
    return parse_global_id(global_id)[1]


async def fetch(client: GraphQLClient, user: Any, patient_id: str) -> dict[str, Any]:
    return (await client.data(GET, {"id": patient_id}, user=user))["patient"]


async def update(client: GraphQLClient, user: Any, patient_id: str, **fields: Any) -> dict:
    variables = {"id": patient_id, "input": fields}
    return (await client.data(UPDATE, variables, user=user))["updatePatient"]


async def create(client: GraphQLClient, user: Any, **fields: Any) -> dict[str, Any]:
    data = {"firstName": "Ada", "lastName": "Lovelace", **fields}
    return (await client.data(CREATE, {"input": data}, user=user))["createPatient"]


async def listing(client: GraphQLClient, user: Any, **variables: Any) -> dict[str, Any]:
    variables.setdefault("first", 100)
    return (await client.data(LIST, variables, user=user))["patients"]


async def names(client: GraphQLClient, user: Any, **variables: Any) -> list[str]:
    page = await listing(client, user, **variables)
    return [f"{n['firstName']} {n['lastName']}" for n in page["nodes"]]


async def audit_rows(database: Database, action: str | None = None) -> list[AuditEvent]:
    """Audit rows of changes (reads are audited too, asynchronously: they are left out)."""
    query = select(AuditEvent).where(~AuditEvent.action.like("%read"))
    if action:
        query = query.where(AuditEvent.action == action)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        return list(await db.scalars(query.order_by(AuditEvent.created_at)))


async def snapshot(client: GraphQLClient, database: Database, user: Any) -> tuple[Any, int]:
    """Every patient the user can see (archived or not), all fields, plus the audit row count."""
    query = f"{{ patients(first: 100, archived: null) {{ nodes {{ {FIELDS} updatedAt }} }} }}"
    nodes = await client.data(query, user=user)
    return nodes["patients"]["nodes"], len(await audit_rows(database))


# --- create / update / archive ------------------------------------------------------------


async def test_counselor_creates_patient_readable_by_id_and_audited(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """A counselor creates a patient with every field; it reads back, is listed, and is audited."""
    created = await create(
        client,
        world.a.counselor,
        firstName="  Grace ",
        lastName="Hopper",
        dateOfBirth="1985-12-09",
        email="Grace.Hopper@Example.COM",
        phone="+1 555 0100",
        emrSystem="epic",
        emrId="E-42",
    )
    assert created["firstName"] == "Grace" and created["fullName"] == "Grace Hopper"
    assert created["email"] == "grace.hopper@example.com"
    assert created["dateOfBirth"] == "1985-12-09" and created["phone"] == "+1 555 0100"
    assert created["emr"] == {"system": "epic", "id": "E-42"} and created["archived"] is False
    assert await fetch(client, world.a.admin, created["id"]) == created
    assert "Grace Hopper" in await names(client, world.a.admin)
    # Another clinic cannot see it.
    assert await client.error_code(GET, {"id": created["id"]}, user=world.b.admin) == "NOT_FOUND"
    [event] = await audit_rows(database, "patient.created")
    assert event.target_id == str(row_id(created["id"]))
    assert (event.actor_user_id, event.clinic_id) == (world.a.counselor.id, world.a.clinic.id)


async def test_update_changes_only_the_fields_sent_and_audits_their_names(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """updatePatient with only `phone` leaves names, email and birth date alone."""
    patient = await create(client, world.a.admin, email="ada@example.com", dateOfBirth="1990-05-05")
    updated = await update(client, world.a.counselor, patient["id"], phone="020 7946 0000")
    assert updated == {**patient, "phone": "020 7946 0000"}
    assert await fetch(client, world.a.admin, patient["id"]) == updated
    [event] = await audit_rows(database, "patient.updated")
    assert event.details == {"fields": ["phone"]} and event.target_id == str(row_id(patient["id"]))
    assert event.actor_user_id == world.a.counselor.id


async def test_update_with_null_clears_optional_fields(client: GraphQLClient, world: World) -> None:
    """Sending null for email, phone, dateOfBirth and the EMR link clears them; names stay."""
    patient = await create(
        client,
        world.a.admin,
        email="x@example.com",
        phone="12345",
        dateOfBirth="1990-01-01",
        emrSystem="cerner",
        emrId="C-1",
    )
    updated = await update(
        client,
        world.a.admin,
        patient["id"],
        email=None,
        phone=None,
        dateOfBirth=None,
        emrSystem=None,
        emrId=None,
    )
    expected = {**patient, "email": None, "phone": None, "dateOfBirth": None, "emr": None}
    assert updated == expected
    assert await fetch(client, world.a.admin, patient["id"]) == expected


async def test_archive_hides_from_default_list_and_unarchive_restores(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """archived filter: false (default) = active, true = archived only, null = both."""
    target = world.a.patients[1]
    admin, all_three = world.a.admin, ["Pat0 ClinicA", "Pat1 ClinicA", "Pat2 ClinicA"]
    archived = await client.data(ARCHIVE, {"id": pid(target)}, user=world.a.counselor)
    assert archived["archivePatient"]["archived"] is True
    assert await names(client, admin) == ["Pat0 ClinicA", "Pat2 ClinicA"]
    assert await names(client, admin, archived=False) == ["Pat0 ClinicA", "Pat2 ClinicA"]
    assert await names(client, admin, archived=True) == ["Pat1 ClinicA"]
    assert await names(client, admin, archived=None) == all_three
    # Still readable by id, with its history.
    assert (await fetch(client, admin, pid(target)))["archived"] is True
    restored = await client.data(UNARCHIVE, {"id": pid(target)}, user=admin)
    assert restored["unarchivePatient"]["archived"] is False
    assert await names(client, admin) == all_three
    assert await names(client, admin, archived=True) == []
    events = [(e.action, e.target_id) for e in await audit_rows(database)]
    target_id = str(target.id)
    assert events == [("patient.archived", target_id), ("patient.unarchived", target_id)]


async def test_archiving_another_clinics_patient_is_not_found(
    client: GraphQLClient, world: World
) -> None:
    """A clinic admin of A cannot archive a patient of B; B's patient stays active."""
    code = await client.error_code(ARCHIVE, {"id": pid(world.b.patients[1])}, user=world.a.admin)
    assert code == "NOT_FOUND"
    assert "Pat1 ClinicB" in await names(client, world.b.admin)


# --- list, search, pagination -------------------------------------------------------------


async def test_cursor_pagination_walks_every_patient_once_in_name_order(
    client: GraphQLClient, world: World
) -> None:
    """Pages of 2 (with same-name patients tied on id) yield each patient once, in order."""
    for first, last in [
        ("Zed", "Aaron"),
        ("Amy", "Aaron"),
        ("Twin", "Same"),
        ("Twin", "Same"),
        ("Twin", "Same"),
        ("Bob", "Zulu"),
    ]:
        await create(client, world.a.admin, firstName=first, lastName=last)
    one_page = await listing(client, world.a.admin)
    everything = one_page["nodes"]
    assert len(everything) == 9 and not one_page["pageInfo"]["hasNextPage"]
    walked: list[str] = []
    after = None
    pages = 0
    while True:
        page = await listing(client, world.a.admin, first=2, after=after)
        pages += 1
        assert 1 <= len(page["nodes"]) <= 2
        assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        walked += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 5
    assert walked == [n["id"] for n in everything]
    assert len(set(walked)) == 9
    ordered = [(n["lastName"], n["firstName"]) for n in everything]
    assert ordered[:2] == [("Aaron", "Amy"), ("Aaron", "Zed")] and ordered[-1] == ("Zulu", "Bob")
    # The cursor of any edge resumes right after it.
    middle = (await listing(client, world.a.admin, first=4))["edges"][3]["cursor"]
    rest = await listing(client, world.a.admin, after=middle)
    assert [n["id"] for n in rest["nodes"]] == walked[4:]


async def test_patient_created_mid_walk_causes_no_duplicates(
    client: GraphQLClient, world: World
) -> None:
    """A patient sorting before the current page, created mid-walk, does not shift later pages."""
    first_page = await listing(client, world.a.admin, first=2)
    await create(client, world.a.admin, firstName="Early", lastName="Aardvark")
    rest = await listing(client, world.a.admin, first=2, after=first_page["pageInfo"]["endCursor"])
    assert [n["firstName"] for n in first_page["nodes"] + rest["nodes"]] == ["Pat0", "Pat1", "Pat2"]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("pat1", ["Pat1 ClinicA"]),  # part of the first name, any case
        ("CLINICA", ["Pat0 ClinicA", "Pat1 ClinicA", "Pat2 ClinicA"]),  # part of the last name
        ("pat2 clinica", ["Pat2 ClinicA"]),  # across first and last name
        ("pat0@a.example", ["Pat0 ClinicA"]),  # the whole email
        ("@a.exam", ["Pat0 ClinicA", "Pat1 ClinicA", "Pat2 ClinicA"]),  # part of the email
        ("clinicb", []),  # another clinic's patients are never found
        ("nobody", []),
    ],
)
async def test_search_by_name_part_and_email(
    client: GraphQLClient, world: World, term: str, expected: list[str]
) -> None:
    """`search` matches parts of names and emails, case-insensitively, within the clinic."""
    assert await names(client, world.a.counselor, search=term) == expected


async def test_search_respects_archived_filter(client: GraphQLClient, world: World) -> None:
    """Searching for an archived patient finds them only when archived patients are asked for."""
    await client.data(ARCHIVE, {"id": pid(world.a.patients[2])}, user=world.a.admin)
    assert await names(client, world.a.admin, search="pat2") == []
    assert await names(client, world.a.admin, search="pat2", archived=True) == ["Pat2 ClinicA"]
    both = await names(client, world.a.admin, search="clinica", archived=None)
    assert both == ["Pat0 ClinicA", "Pat1 ClinicA", "Pat2 ClinicA"]


# --- validation: right code, nothing changed ---------------------------------------------

FUTURE = (date.today() + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"firstName": ""}, "VALIDATION"),
        ({"lastName": "   "}, "VALIDATION"),
        ({"firstName": "x" * 101}, "VALIDATION"),
        ({"email": "not-an-email"}, "VALIDATION"),
        ({"email": "two@@example.com"}, "VALIDATION"),
        ({"dateOfBirth": FUTURE}, "VALIDATION"),
        ({"dateOfBirth": "1899-12-31"}, "VALIDATION"),
        ({"phone": "call me"}, "VALIDATION"),
        ({"emrSystem": "epic"}, "VALIDATION"),
        ({"emrId": "E-1"}, "VALIDATION"),
        ({"emrSystem": "epic", "emrId": "E-DUP"}, "CONFLICT"),  # E-DUP exists in this clinic
        ({"userId": "not-an-id"}, "VALIDATION"),
    ],
)
async def test_create_rejects_bad_input_and_changes_nothing(
    client: GraphQLClient, world: World, database: Database, fields: dict[str, Any], code: str
) -> None:
    """Each invalid createPatient returns its code and creates no patient and no audit row."""
    await update(client, world.a.admin, pid(world.a.patients[1]), emrSystem="epic", emrId="E-DUP")
    before = await snapshot(client, database, world.a.admin)
    body = {"firstName": "Ada", "lastName": "Lovelace", **fields}
    assert await client.error_code(CREATE, {"input": body}, user=world.a.counselor) == code
    assert await snapshot(client, database, world.a.admin) == before


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"firstName": None}, "VALIDATION"),  # a required name cannot be cleared
        ({"lastName": ""}, "VALIDATION"),
        ({"email": "nope", "phone": "0800 123 456"}, "VALIDATION"),  # one bad field spoils all
        ({"dateOfBirth": FUTURE}, "VALIDATION"),
        ({"emrId": None}, "VALIDATION"),  # would leave emrSystem without emrId
        ({"emrSystem": "epic", "emrId": "E-OTHER"}, "CONFLICT"),  # Pat2 already has it
        ({"phone": "12345", "emrId": "E-OTHER"}, "CONFLICT"),  # the valid phone is not kept
    ],
)
async def test_update_rejects_bad_input_and_changes_nothing(
    client: GraphQLClient, world: World, database: Database, fields: dict[str, Any], code: str
) -> None:
    """Each invalid updatePatient returns its code; no patient and no audit row changes."""
    await update(client, world.a.admin, pid(world.a.patients[1]), emrSystem="epic", emrId="E-1")
    await update(client, world.a.admin, pid(world.a.patients[2]), emrSystem="epic", emrId="E-OTHER")
    before = await snapshot(client, database, world.a.admin)
    variables = {"id": pid(world.a.patients[1]), "input": fields}
    assert await client.error_code(UPDATE, variables, user=world.a.admin) == code
    assert await snapshot(client, database, world.a.admin) == before


async def test_same_emr_id_is_allowed_in_another_clinic_or_system(
    client: GraphQLClient, world: World
) -> None:
    """EMR ids are unique per clinic and system, not globally."""
    await create(client, world.a.admin, emrSystem="epic", emrId="E-7")
    other_clinic = await create(client, world.b.admin, emrSystem="epic", emrId="E-7")
    other_system = await create(client, world.a.admin, emrSystem="cerner", emrId="E-7")
    assert other_clinic["emr"] == {"system": "epic", "id": "E-7"}
    assert other_system["emr"] == {"system": "cerner", "id": "E-7"}


@pytest.mark.parametrize(
    "bad_id",
    [
        to_global_id("User", uuid.uuid4()),
        to_global_id("CounselingSession", uuid.uuid4()),
        "garbage!",
    ],
)
async def test_wrong_kind_of_id_is_a_validation_error(
    client: GraphQLClient, world: World, database: Database, bad_id: str
) -> None:
    """A non-patient id on patient/updatePatient/(un)archivePatient is VALIDATION; no change."""
    before = await snapshot(client, database, world.a.admin)
    assert await client.error_code(GET, {"id": bad_id}, user=world.a.admin) == "VALIDATION"
    attempts = [(UPDATE, {"input": {"firstName": "X"}}), (ARCHIVE, {}), (UNARCHIVE, {})]
    for mutation, extra in attempts:
        variables = {"id": bad_id, **extra}
        assert await client.error_code(mutation, variables, user=world.a.admin) == "VALIDATION"
    assert await snapshot(client, database, world.a.admin) == before


async def test_unknown_patient_id_is_not_found(client: GraphQLClient, world: World) -> None:
    """A well-formed patient id that does not exist is NOT_FOUND."""
    missing = to_global_id("Patient", uuid.uuid4())
    assert await client.error_code(GET, {"id": missing}, user=world.a.admin) == "NOT_FOUND"
    variables = {"id": missing, "input": {"phone": "12345"}}
    assert await client.error_code(UPDATE, variables, user=world.a.admin) == "NOT_FOUND"


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        encode_cursor(["Clinic"]),  # wrong arity
        encode_cursor(["2030-01-01T00:00:00+00:00", str(uuid.uuid4())]),  # shaped like a session's
        encode_cursor(["ClinicA", "Pat0", "not-a-uuid"]),  # right arity, forged contents
        encode_cursor([1, 2, 3]),
    ],
)
async def test_bad_cursor_is_a_validation_error(
    client: GraphQLClient, world: World, cursor: str
) -> None:
    """An `after` cursor the server did not hand out is VALIDATION, not an internal error."""
    variables = {"first": 2, "after": cursor}
    assert await client.error_code(LIST, variables, user=world.a.admin) == "VALIDATION"


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_page_size_out_of_range_is_a_validation_error(
    client: GraphQLClient, world: World, first: int
) -> None:
    """`first` must be 1..100."""
    assert await client.error_code(LIST, {"first": first}, user=world.a.admin) == "VALIDATION"


async def test_page_size_bounds_are_accepted(client: GraphQLClient, world: World) -> None:
    """first=1 gives one patient and a next page; first=100 gives all three."""
    one = await listing(client, world.a.admin, first=1)
    assert len(one["nodes"]) == 1 and one["pageInfo"]["hasNextPage"] is True
    assert len((await listing(client, world.a.admin, first=100))["nodes"]) == 3


async def test_search_treats_wildcards_as_plain_characters(
    client: GraphQLClient, world: World
) -> None:
    """Searching for an email with `_` finds it, and `%` alone matches nobody."""
    create = "mutation($i: CreatePatientInput!) { createPatient(input: $i) { id } }"
    await client.data(
        create,
        {"i": {"firstName": "Wil", "lastName": "Card", "email": "wil_card@x.test"}},
        user=world.a.admin,
    )
    query = "query($s: String!) { patients(search: $s) { nodes { email } } }"
    found = await client.data(query, {"s": "wil_card"}, user=world.a.admin)
    assert [n["email"] for n in found["patients"]["nodes"]] == ["wil_card@x.test"]
    assert (await client.data(query, {"s": "l_c"}, user=world.a.admin))["patients"]["nodes"] == [
        {"email": "wil_card@x.test"}
    ]
    assert (await client.data(query, {"s": "i%c"}, user=world.a.admin))["patients"]["nodes"] == []
