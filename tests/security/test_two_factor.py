"""Two-factor authentication as a user meets it: enroll, log in in two steps, recovery codes,
lockout on wrong codes, and admins in production made to enroll before anything else."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import User
from gateway.db.tenancy import TenantScope
from gateway.security import totp
from tests.factories import PASSWORD, World
from tests.security.conftest import MakeClient, SecClient

LOGIN = """mutation($e: String!, $p: String!, $otp: String) { login(email: $e, password: $p, otp: $otp) {
  accessToken refreshToken twoFactorRequired challengeToken twoFactorEnrollmentRequired user { email } } }"""
VERIFY = """mutation($t: String!, $c: String!) { verifyTwoFactor(challengeToken: $t, code: $c) {
  accessToken refreshToken user { email } } }"""
START = "mutation { startTwoFactorEnrollment { secret otpauthUri } }"
CONFIRM = "mutation($c: String!) { confirmTwoFactorEnrollment(code: $c) { recoveryCodes auth { accessToken refreshToken } } }"
DISABLE = "mutation($c: String!) { disableTwoFactor(code: $c) }"
STATUS = "{ twoFactorStatus { enabled required recoveryCodesRemaining } }"
ME = "{ me { email } }"


def next_code(secret: str) -> str:
    """A code of the next time step: the current one may already be spent (no replay)."""
    return totp.current_code(secret, time.time() + totp.INTERVAL)


async def enroll(c: SecClient, **auth: Any) -> tuple[str, list[str]]:
    started = (await c.data(START, **auth))["startTwoFactorEnrollment"]
    secret = started["secret"]
    confirmed = (await c.data(CONFIRM, {"c": totp.current_code(secret)}, **auth))[
        "confirmTwoFactorEnrollment"
    ]
    return secret, confirmed["recoveryCodes"]


async def test_enroll_then_login_needs_a_code_in_a_second_step(
    make_client: MakeClient, world: World, database: Database
) -> None:
    c = await make_client()
    user = world.a.counselor
    started = (await c.data(START, user=user))["startTwoFactorEnrollment"]
    assert started["otpauthUri"].startswith("otpauth://totp/Santana:counselor%40a.test?secret=")
    bad = await c.execute(CONFIRM, {"c": "000000"}, user=user)
    assert bad["errors"][0]["extensions"] == {"code": "TWO_FACTOR_CODE_INVALID", "field": "code"}
    assert (await c.data(STATUS, user=user))["twoFactorStatus"]["enabled"] is False
    secret = started["secret"]
    codes = (await c.data(CONFIRM, {"c": totp.current_code(secret)}, user=user))[
        "confirmTwoFactorEnrollment"
    ]
    assert len(codes["recoveryCodes"]) == 10 and len(set(codes["recoveryCodes"])) == 10
    assert codes["auth"] is None  # a full login needs no new tokens
    # The secret is stored encrypted, never as it is.
    async with database.transaction(TenantScope.cross_clinic()) as db:
        row = await db.scalar(select(User).where(User.id == user.id))
        assert (
            row is not None
            and row.totp_secret_encrypted
            and secret not in row.totp_secret_encrypted
        )

    first = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"]
    assert (
        first["twoFactorRequired"] is True
        and first["accessToken"] is None
        and first["user"] is None
    )
    wrong = await c.execute(VERIFY, {"t": first["challengeToken"], "c": "123456"})
    assert wrong["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "two_factor_code",
    }
    done = (await c.data(VERIFY, {"t": first["challengeToken"], "c": next_code(secret)}))[
        "verifyTwoFactor"
    ]
    assert (await c.data(ME, token=done["accessToken"]))["me"]["email"] == "counselor@a.test"
    # The same code cannot be replayed, even with a fresh challenge.
    again = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"]
    replay = await c.execute(VERIFY, {"t": again["challengeToken"], "c": next_code(secret)})
    assert replay["errors"][0]["extensions"]["reason"] == "two_factor_code"
    # A forged challenge gets nowhere.
    forged = await c.execute(VERIFY, {"t": done["accessToken"], "c": next_code(secret)})
    assert forged["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_login_with_otp_in_one_step_and_recovery_codes_are_single_use(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client()
    secret, codes = await enroll(c, user=world.a.counselor)
    one_step = (
        await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD, "otp": next_code(secret)})
    )["login"]
    assert one_step["accessToken"] and one_step["twoFactorRequired"] is False
    recovery = codes[0].upper()  # typed however the user likes
    ok = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD, "otp": recovery}))["login"]
    assert ok["accessToken"]
    reused = await c.execute(LOGIN, {"e": "counselor@a.test", "p": PASSWORD, "otp": codes[0]})
    assert reused["errors"][0]["extensions"]["reason"] == "two_factor_code"
    status = (await c.data(STATUS, user=world.a.counselor))["twoFactorStatus"]
    assert status == {"enabled": True, "required": False, "recoveryCodesRemaining": 9}


async def test_wrong_codes_lock_the_account(make_client: MakeClient, world: World) -> None:
    c = await make_client(rate_limit_auth="100/minute")
    secret, _ = await enroll(c, user=world.a.counselor)
    challenge = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"][
        "challengeToken"
    ]
    for _ in range(5):
        assert await c.error_code(VERIFY, {"t": challenge, "c": "000000"}) == "UNAUTHENTICATED"
    locked = await c.execute(VERIFY, {"t": challenge, "c": next_code(secret)})
    assert locked["errors"][0]["extensions"]["code"] == "ACCOUNT_LOCKED"
    assert await c.error_code(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}) == "ACCOUNT_LOCKED"


async def test_two_factor_codes_count_against_the_auth_rate_limit(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client(rate_limit_auth="5/minute", login_max_failures=50)
    await enroll(c, user=world.a.counselor)  # one attempt (the confirmation)
    challenge = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"][
        "challengeToken"
    ]
    codes = [await c.error_code(VERIFY, {"t": challenge, "c": "000000"}) for _ in range(4)]
    assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"]


async def test_disable_needs_a_code_then_login_is_password_only(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client()
    secret, codes = await enroll(c, user=world.a.counselor)
    assert (
        await c.error_code(DISABLE, {"c": "000000"}, user=world.a.counselor)
        == "TWO_FACTOR_CODE_INVALID"
    )
    assert (await c.data(DISABLE, {"c": codes[3]}, user=world.a.counselor)) == {
        "disableTwoFactor": True
    }
    login = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"]
    assert login["accessToken"] and login["twoFactorRequired"] is False


async def test_admins_in_production_must_enroll_before_anything_else(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client(production=True)
    first = (await c.data(LOGIN, {"e": "admin@a.test", "p": PASSWORD}))["login"]
    assert first["twoFactorEnrollmentRequired"] is True
    assert first["accessToken"] and first["refreshToken"] is None
    enroll_only = first["accessToken"]
    blocked = await c.execute(ME, token=enroll_only)
    assert blocked["errors"][0]["extensions"]["code"] == "TWO_FACTOR_ENROLLMENT_REQUIRED"
    patients = await c.execute("{ patients { nodes { id } } }", token=enroll_only)
    assert patients["errors"][0]["extensions"]["code"] == "TWO_FACTOR_ENROLLMENT_REQUIRED"
    status = (await c.data(STATUS, token=enroll_only))["twoFactorStatus"]
    assert status == {"enabled": False, "required": True, "recoveryCodesRemaining": 0}
    secret = (await c.data(START, token=enroll_only))["startTwoFactorEnrollment"]["secret"]
    done = (await c.data(CONFIRM, {"c": totp.current_code(secret)}, token=enroll_only))[
        "confirmTwoFactorEnrollment"
    ]
    full = done["auth"]
    assert full["refreshToken"]
    assert (await c.data(ME, token=full["accessToken"]))["me"]["email"] == "admin@a.test"
    # Required for the role: it cannot be switched off.
    assert (
        await c.error_code(DISABLE, {"c": next_code(secret)}, token=full["accessToken"])
        == "FORBIDDEN"
    )
    # Next time the code is asked for, as for everyone with 2FA.
    again = (await c.data(LOGIN, {"e": "admin@a.test", "p": PASSWORD}))["login"]
    assert again["twoFactorRequired"] is True
    # Staff and patients are not forced.
    staff = (await c.data(LOGIN, {"e": "counselor@a.test", "p": PASSWORD}))["login"]
    assert staff["accessToken"] and staff["twoFactorEnrollmentRequired"] is False


async def test_refresh_of_an_admin_login_from_before_the_rule_is_refused(
    make_client: MakeClient, world: World
) -> None:
    dev = await make_client()
    login = (await dev.data(LOGIN, {"e": "admin@a.test", "p": PASSWORD}))["login"]
    prod = await make_client(production=True)
    refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }"
    body = await prod.execute(refresh, {"t": login["refreshToken"]})
    assert body["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "two_factor_enrollment",
    }
