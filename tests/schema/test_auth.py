"""Login, refresh-token rotation, logout, lockout and password change, as a client sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent, User
from gateway.db.tenancy import TenantScope
from tests.conftest import GraphQLClient
from tests.factories import PASSWORD, World

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken accessTokenExpiresAt user { email role } }
}"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }"
ME = "{ me { email } }"


async def _audit(database: Database, action: str) -> list[AuditEvent]:
    async with database.transaction(TenantScope.cross_clinic()) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.created_at)
        )
        return list(rows)


async def test_login_returns_tokens_that_work_for_me(client: GraphQLClient, world: World) -> None:
    data = await client.data(LOGIN, {"email": " Counselor@A.test ", "password": PASSWORD})
    login = data["login"]
    assert login["user"] == {"email": "counselor@a.test", "role": "COUNSELOR"}
    expires = datetime.fromisoformat(login["accessTokenExpiresAt"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=900)
    me = await client.data(ME, token=login["accessToken"])
    assert me["me"]["email"] == "counselor@a.test"


async def test_wrong_password_and_unknown_email_look_the_same_and_are_audited(
    client: GraphQLClient, world: World, database: Database
) -> None:
    wrong = await client.execute(
        LOGIN, {"email": "counselor@a.test", "password": "not-the-password"}
    )
    unknown = await client.execute(
        LOGIN, {"email": "nobody@a.test", "password": "not-the-password"}
    )
    for body in (wrong, unknown):
        assert body["data"] is None
        assert body["errors"][0]["message"] == "Invalid email or password."
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    events = await _audit(database, "auth.login")
    assert [(e.outcome, e.details.get("reason")) for e in events] == [
        ("failure", "bad_password"),
        ("failure", "unknown_email"),
    ]
    assert all("not-the-password" not in str(e.details) for e in events)


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: GraphQLClient, world: World, database: Database
) -> None:
    for _ in range(5):
        await client.error_code(LOGIN, {"email": "admin@a.test", "password": "guess-guess-guess"})
    body = await client.execute(LOGIN, {"email": "admin@a.test", "password": PASSWORD})
    assert body["errors"][0]["extensions"]["code"] == "ACCOUNT_LOCKED"
    assert body["errors"][0]["extensions"]["retryAfterSeconds"] > 0
    # Another account is unaffected.
    await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD})
    # Once the lock has passed, the right password works again.
    async with database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.scalar(select(User).where(User.email == "admin@a.test"))
        assert user is not None and user.locked_until is not None
        user.locked_until = datetime.now(UTC) - timedelta(seconds=1)
    await client.data(LOGIN, {"email": "admin@a.test", "password": PASSWORD})


async def test_refresh_rotates_and_a_reused_token_ends_the_whole_login(
    client: GraphQLClient, world: World
) -> None:
    first = (await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD}))["login"]
    second = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert second["refreshToken"] != first["refreshToken"]
    await client.data(ME, token=second["accessToken"])
    # The first token was rotated away: presenting it again is treated as theft...
    assert await client.error_code(REFRESH, {"t": first["refreshToken"]}) == "UNAUTHENTICATED"
    # ...which also revokes the token the legitimate holder had.
    assert await client.error_code(REFRESH, {"t": second["refreshToken"]}) == "UNAUTHENTICATED"


async def test_logout_revokes_the_refresh_token(client: GraphQLClient, world: World) -> None:
    login = (await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD}))["login"]
    other = (await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD}))["login"]
    ok = await client.data(
        "mutation($t: String) { logout(refreshToken: $t) }",
        {"t": login["refreshToken"]},
        token=login["accessToken"],
    )
    assert ok == {"logout": True}
    assert await client.error_code(REFRESH, {"t": login["refreshToken"]}) == "UNAUTHENTICATED"
    # A logout ends that login only; the same user's other device keeps working.
    await client.data(REFRESH, {"t": other["refreshToken"]})


async def test_missing_expired_malformed_and_forged_tokens_are_refused(
    client: GraphQLClient, world: World
) -> None:
    assert (await client.execute(ME))["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "missing",
    }
    now = datetime.now(UTC)
    claims = {
        "iss": "santana",
        "sub": str(world.a.admin.id),
        "role": "clinic_admin",
        "clinic": str(world.a.clinic.id),
        "iat": int((now - timedelta(hours=1)).timestamp()),
    }
    expired = jwt.encode(
        {**claims, "exp": int((now - timedelta(minutes=1)).timestamp())},
        client.settings.jwt_secret,
        algorithm="HS256",
    )
    body = await client.execute(ME, token=expired)
    assert body["errors"][0]["extensions"]["reason"] == "expired"
    forged = jwt.encode(
        {**claims, "exp": int((now + timedelta(minutes=5)).timestamp())},
        "someone-elses-secret-" * 4,
        algorithm="HS256",
    )
    assert (await client.execute(ME, token=forged))["errors"][0]["extensions"][
        "reason"
    ] == "invalid"
    body = await client.execute(ME, headers={"Authorization": "Basic abc"})
    assert body["errors"][0]["extensions"]["reason"] == "malformed"
    # An expired header does not stop a fresh login.
    await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD}, token=expired)


async def test_change_password_checks_the_old_one_and_ends_other_logins(
    client: GraphQLClient, world: World
) -> None:
    login = (await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD}))["login"]
    change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
    wrong = await client.execute(
        change, {"c": "wrong-current-pw", "n": "a-brand-new-password"}, user=world.a.counselor
    )
    assert wrong["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "currentPassword"}
    short = await client.execute(change, {"c": PASSWORD, "n": "short"}, user=world.a.counselor)
    assert short["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "password"}
    # Nothing changed so far: the old password still logs in.
    await client.data(LOGIN, {"email": "counselor@a.test", "password": PASSWORD})
    await client.data(change, {"c": PASSWORD, "n": "a-brand-new-password"}, user=world.a.counselor)
    assert (
        await client.error_code(LOGIN, {"email": "counselor@a.test", "password": PASSWORD})
        == "UNAUTHENTICATED"
    )
    await client.data(LOGIN, {"email": "counselor@a.test", "password": "a-brand-new-password"})
    assert await client.error_code(REFRESH, {"t": login["refreshToken"]}) == "UNAUTHENTICATED"


async def test_login_payload_resolves_nested_fields_as_the_new_login(
    client: GraphQLClient, world: World
) -> None:
    """A front end asks for the user's clinic in the same request as the login."""
    query = """mutation($email: String!, $password: String!) {
      login(email: $email, password: $password) {
        user { fullName clinic { slug } } other: user { clinic { name } } } }"""
    data = await client.data(query, {"email": "counselor@a.test", "password": PASSWORD})
    assert data["login"]["user"] == {"fullName": "Counselor a", "clinic": {"slug": "clinic-a"}}
