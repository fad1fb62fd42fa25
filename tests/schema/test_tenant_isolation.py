"""Cross-tenant isolation: a user of clinic B can never read or change anything of
clinic A, whatever ids it sends.

Every root query and mutation field has rows in ATTEMPTS (tests/schema/isolation_attempts.py),
or an entry in TENANT_FREE saying why it needs no tenant and which test here covers it;
the meta-test fails when a new field has neither. Each attempt is made by B's clinic
admin, counselor and patient against A's objects, and must:
- get the expected error, an empty result, or only B's own data;
- leak none of A's names, emails, ids, notes, secrets or tokens (other than what it sent);
- be answered exactly as if the A ids it sent did not exist at all (no existence oracle);
- leave every row of clinic A, in every tenant table, exactly as it was.
The database's own wall (PostgreSQL RLS) is tested in tests/gateway/test_rls.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from sqlalchemy import select

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.models import TENANT_TABLES, Base
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import Integration
from gateway.security import totp
from gateway.settings import Settings, load_settings
from schema import build_schema
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import PASSWORD, World
from tests.schema.isolation_attempts import (
    A_SECRETS,
    ATTEMPTS,
    EMPTY,
    NEW_PASSWORD,
    OWN,
    PLUGIN,
    TENANT_FREE,
    TYPE_NAMES,
    Attempt,
    Targets,
    gid,
)

LOGIN = """mutation($e: String!, $p: String!) {
  login(email: $e, password: $p) { accessToken refreshToken challengeToken user { id email } } }"""
REFRESH = """mutation($t: String!) {
  refreshToken(refreshToken: $t) { accessToken refreshToken user { id email } } }"""
A_MAIL_FROM = "billing@a.example"


@pytest.fixture
async def targets(
    client: GraphQLClient, world: World, database: Database, settings: Settings
) -> Targets:
    """A's counselor logs in (a live refresh token), and A sets up its mail plugin."""
    data = await client.data(LOGIN, {"e": world.a.counselor.email, "p": PASSWORD})
    cipher = DataCipher(settings.encryption_keys)
    async with database.transaction(TenantScope.clinic(world.a.clinic.id)) as db:
        integration = Integration(
            clinic_id=world.a.clinic.id, plugin=PLUGIN, kind="email", enabled=True,
            config={"from_address": A_MAIL_FROM}, updated_by=world.a.admin.id,
            secrets_encrypted=cipher.encrypt(json.dumps(A_SECRETS)),
        )  # fmt: skip
        db.add(integration)
    return Targets(world, data["login"]["refreshToken"], integration)


def root_field(query: str) -> tuple[str, str]:
    operation = next(d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode))
    return operation.operation.value, operation.selection_set.selections[0].name.value  # type: ignore[attr-defined]


def test_every_operation_has_an_isolation_entry() -> None:
    """A query, mutation or subscription field added to the schema without an attempt
    in ATTEMPTS (or a reasoned TENANT_FREE entry with its test) fails this."""
    gql = build_schema(load_settings(app_env="test", database_url="sqlite://"))._schema
    roots = {
        "query": gql.query_type,
        "mutation": gql.mutation_type,
        "subscription": gql.subscription_type,
    }
    in_schema = {(op, name) for op, root in roots.items() if root for name in root.fields}
    attempted = {root_field(a.query) for a in ATTEMPTS}
    missing = in_schema - attempted - set(TENANT_FREE)
    assert not missing, f"no cross-tenant attempt for {sorted(missing)}: add rows to ATTEMPTS"
    assert not (attempted | set(TENANT_FREE)) - in_schema, "entries for fields that are gone"
    assert not attempted & set(TENANT_FREE), "a field is both attempted and called tenant-free"
    for why, test_name in TENANT_FREE.values():
        assert why and callable(globals().get(test_name)), f"{test_name} does not exist"
    assert len({a.name for a in ATTEMPTS}) == len(ATTEMPTS), "attempt names must be unique"


def tenant_tables() -> dict[str, str]:
    """Every table that belongs to clinics (the core's and any registered later, e.g.
    the integration layer's), with the column naming the clinic."""
    tables = Base.metadata.tables.items()
    return {n: "clinic_id" for n, t in tables if "clinic_id" in t.c} | TENANT_TABLES


async def snapshot(database: Database, clinic_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `clinic_id` in every tenant table, in primary-key order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with database.transaction(TenantScope.cross_clinic()) as db:
        for name, column in tenant_tables().items():
            table = Base.metadata.tables[name]
            query = select(table).where(table.c[column] == clinic_id)
            rows[name] = [tuple(r) for r in await db.execute(query.order_by(*table.primary_key))]
    assert rows["patients"] and rows["counseling_sessions"] and rows["users"], "snapshot is blind"
    return rows


def a_identifiers(t: Targets) -> set[str]:
    """Strings that would identify clinic A if they showed up in an answer to B."""
    a = t.w.a
    found = {a.clinic.name, a.clinic.slug, t.a_refresh, "private notes a", A_MAIL_FROM}
    found |= {*A_SECRETS.values(), str(t.a_integration.secrets_encrypted)}
    for row in t.a_rows:
        found |= {str(row.id), gid(row)}
    for user in (a.admin, a.counselor, a.counselor2, a.patient_user):
        found |= {user.email, user.full_name}
    for p in a.patients:
        found |= {str(p.email), p.last_name, f"{p.first_name} {p.last_name}"}
    return found


def with_ghost_ids(variables: dict[str, Any], t: Targets) -> dict[str, Any]:
    """`variables` with each id of A replaced by a well-formed id of nothing."""
    text = json.dumps(variables)
    for row in t.a_rows:
        text = text.replace(gid(row), to_global_id(TYPE_NAMES[type(row)], uuid.uuid4()))
    return json.loads(text)


def check_outcome(body: dict[str, Any], field: str, expected: str, where: str) -> None:
    errors = body.get("errors") or []
    if expected in (EMPTY, OWN):
        assert not errors, f"{where}: expected no error, got {errors}"
        lists = list(_all_nodes(body["data"]))
        if expected == EMPTY:
            assert lists and not any(lists), f"{where}: expected nothing, got {body['data']}"
        return
    codes = [e["extensions"]["code"] for e in errors]
    assert codes == [expected], f"{where}: expected {expected}, got {body}"
    assert (body.get("data") or {}).get(field) is None, f"{where}: data came with the error"


def _all_nodes(value: Any) -> Any:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "nodes":
                yield child
            yield from _all_nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _all_nodes(child)


def assert_no_leak(body: dict[str, Any], sent: str, secrets: set[str], where: str) -> None:
    answer = json.dumps(body)
    leaked = sorted(s for s in secrets if s not in sent and s in answer)
    assert not leaked, f"{where}: the answer shows clinic A's {leaked}: {answer}"


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=lambda a: a.name)
async def test_clinic_b_cannot_read_or_change_clinic_a(
    attempt: Attempt, client: GraphQLClient, world: World, database: Database, targets: Targets
) -> None:
    before = await snapshot(database, world.a.clinic.id)
    secrets = a_identifiers(targets)
    field = root_field(attempt.query)[1]
    for role, expected in attempt.outcome.items():
        user = getattr(world.b, role)
        where = f"B's {role} tried {attempt.what}"
        variables = attempt.variables(targets)
        body = await client.execute(attempt.query, variables, user=user)
        check_outcome(body, field, expected, where)
        assert_no_leak(body, attempt.query + json.dumps(variables), secrets, where)
        ghost = with_ghost_ids(variables, targets)
        if ghost != variables:
            again = await client.execute(attempt.query, ghost, user=user)
            assert again == body, f"{where}: A's ids are told apart from ids of nothing: {again}"
    after = await snapshot(database, world.a.clinic.id)
    assert after == before, f"clinic A changed after B tried {attempt.what}"


async def test_login_as_b_gives_a_session_fenced_to_b(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Tried: B's admin logs in, then uses that token on A's clinic id."""
    before = await snapshot(database, world.a.clinic.id)
    login = (await client.data(LOGIN, {"e": world.b.admin.email, "p": PASSWORD}))["login"]
    assert login["user"] == {"id": gid(world.b.admin), "email": world.b.admin.email}
    me = await client.data("{ me { clinic { id } } }", token=login["accessToken"])
    assert me["me"]["clinic"]["id"] == gid(world.b.clinic)
    query, a_clinic = "query($id: ID!) { clinic(id: $id) { name } }", {"id": gid(world.a.clinic)}
    assert await client.error_code(query, a_clinic, token=login["accessToken"]) == "NOT_FOUND"
    assert await snapshot(database, world.a.clinic.id) == before


async def test_refresh_tokens_of_b_never_yield_a_and_leave_a_logins_alone(
    client: GraphQLClient, world: World, database: Database, targets: Targets
) -> None:
    """Tried: B refreshes, replays a used refresh token (revoking its own family), sends
    its access token as a refresh token, and logs out everywhere; A's login survives."""
    before = await snapshot(database, world.a.clinic.id)
    first = (await client.data(LOGIN, {"e": world.b.counselor.email, "p": PASSWORD}))["login"]
    rotated = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert rotated["user"]["email"] == world.b.counselor.email
    for replayed in (first["refreshToken"], rotated["refreshToken"], first["accessToken"]):
        assert await client.error_code(REFRESH, {"t": replayed}) == "UNAUTHENTICATED"
    await client.data("mutation { logout }", user=world.b.counselor)
    assert await snapshot(database, world.a.clinic.id) == before, "B's tokens touched clinic A"
    still = (await client.data(REFRESH, {"t": targets.a_refresh}))["refreshToken"]
    assert still["user"]["email"] == world.a.counselor.email


async def test_invitation_of_b_activates_only_b_and_leaves_a_invitation_alone(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Tried: both clinics invite someone; B's invitee accepts (twice) and a made-up
    token is sent; A's invitee must stay invited, and able to accept afterwards."""
    invite = """mutation($e: String!) {
      createUser(input: {email: $e, fullName: "New", role: COUNSELOR}) { invitationToken } }"""
    accept = """mutation($t: String!, $p: String!) {
      acceptInvitation(token: $t, password: $p) { accessToken user { email } } }"""
    me = "{ me { email clinic { id } } }"
    tokens = {}
    for tag, admin in (("a", world.a.admin), ("b", world.b.admin)):
        invited = await client.data(invite, {"e": f"new@{tag}.test"}, user=admin)
        tokens[tag] = invited["createUser"]["invitationToken"]
    before = await snapshot(database, world.a.clinic.id)
    got = (await client.data(accept, {"t": tokens["b"], "p": NEW_PASSWORD}))["acceptInvitation"]
    seen = (await client.data(me, token=got["accessToken"]))["me"]
    assert seen == {"email": "new@b.test", "clinic": {"id": gid(world.b.clinic)}}
    for token in (tokens["b"], "made-up-token"):
        assert await client.error_code(accept, {"t": token, "p": NEW_PASSWORD}) == "VALIDATION"
    assert await snapshot(database, world.a.clinic.id) == before, "B's invitation touched A"
    got = (await client.data(accept, {"t": tokens["a"], "p": NEW_PASSWORD}))["acceptInvitation"]
    seen = (await client.data(me, token=got["accessToken"]))["me"]
    assert seen == {"email": "new@a.test", "clinic": {"id": gid(world.a.clinic)}}


async def test_two_factor_of_b_never_touches_a(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Tried: B's counselor sets up 2FA, logs in through verifyTwoFactor (and with a
    made-up challenge), regenerates its recovery codes and turns 2FA off again."""
    me, before = world.b.counselor, await snapshot(database, world.a.clinic.id)
    start = await client.data("mutation { startTwoFactorEnrollment { secret } }", user=me)
    code = totp.current_code(start["startTwoFactorEnrollment"]["secret"])
    confirm = "mutation($c: String!) { confirmTwoFactorEnrollment(code: $c) { recoveryCodes } }"
    codes = (await client.data(confirm, {"c": code}, user=me))["confirmTwoFactorEnrollment"]
    recovery = codes["recoveryCodes"]
    login = (await client.data(LOGIN, {"e": me.email, "p": PASSWORD}))["login"]
    assert login["accessToken"] is None, "2FA is on: the password alone gives no token"
    challenge = login["challengeToken"]
    verify = """mutation($t: String!, $c: String!) {
      verifyTwoFactor(challengeToken: $t, code: $c) { accessToken user { id email } } }"""
    got = (await client.data(verify, {"t": challenge, "c": recovery[0]}))["verifyTwoFactor"]
    assert got["user"] == {"id": gid(me), "email": me.email}
    made_up = {"t": "made-up-challenge", "c": recovery[1]}
    assert await client.error_code(verify, made_up) == "UNAUTHENTICATED"
    regenerate = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) }"
    fresh = (await client.data(regenerate, {"c": recovery[1]}, user=me))["regenerateRecoveryCodes"]
    disable = "mutation($c: String!) { disableTwoFactor(code: $c) }"
    assert (await client.data(disable, {"c": fresh[0]}, user=me))["disableTwoFactor"] is True
    assert await snapshot(database, world.a.clinic.id) == before, "B's 2FA touched clinic A"


async def test_password_reset_asked_from_b_mails_only_the_account_owner(
    client: GraphQLClient, world: World, database: Database
) -> None:
    """Tried: B's users ask resets for A's counselor, for themselves and for a made-up
    address; every answer is the same and nothing of A's comes back (the link goes
    only to the address on the account, through that account's clinic)."""
    ask = "mutation($e: String!) { requestPasswordReset(email: $e) }"
    answers = set()
    for user in (world.b.admin, world.b.counselor, world.b.patient_user):
        for email in (world.a.counselor.email, user.email, "nobody@nowhere.test"):
            answers.add(json.dumps(await client.data(ask, {"e": email}, user=user)))
    assert len(answers) == 1
    assert world.a.counselor.email not in answers.pop()
    from gateway.services import password_reset

    await password_reset.settle()  # the requests are worked on after their answers


async def test_subscriptions_of_b_never_hear_of_a(
    world: World, settings: Settings, database: Database
) -> None:
    """Tried: B's admin, counselor and patient follow every subscription while A books a
    session and A's payment and email change (tests/realtime/isolation.py)."""
    from tests.realtime.isolation import b_never_hears_of_a

    await b_never_hears_of_a(world, settings, database)
