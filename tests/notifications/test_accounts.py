"""Password reset and invitations: links by email, single-use, hashed, expiring."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select, update

from gateway.auth.tokens import hash_refresh_token
from gateway.db.models import RefreshToken, UserToken
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.services import password_reset
from tests.factories import PASSWORD
from tests.notifications.conftest import MailApp

REQUEST = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) { refreshToken } }"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }"
NEW_PASSWORD = "a-completely-new-passphrase-42"


def _link_token(text: str) -> str:
    link = re.search(r"https://app\.santana\.test/\S+", text)
    assert link, text
    return parse_qs(urlparse(link.group(0)).query)["token"][0]


async def _reset_email_token(mail: MailApp) -> str:
    await password_reset.settle()  # the request is worked on after its answer
    await mail.deliver()
    sent = mail.providers.sendgrid.accepted[-1]["mail"]
    assert sent["subject"] == "Reset your password"
    return _link_token(sent["content"][0]["value"])


async def test_reset_answers_the_same_for_known_and_unknown_addresses(mail: MailApp) -> None:
    known = await mail.gql.data(REQUEST, {"e": mail.world.a.counselor.email})
    unknown = await mail.gql.data(REQUEST, {"e": "nobody@nowhere.test"})
    assert known == unknown
    await password_reset.settle()
    await mail.deliver()
    # Only the real account got an email.
    assert [m["to"] for m in mail.providers.sendgrid.accepted] == [[mail.world.a.counselor.email]]


async def test_reset_link_sets_the_password_once_and_ends_other_logins(mail: MailApp) -> None:
    user = mail.world.a.counselor
    other_login = (await mail.gql.data(LOGIN, {"e": user.email, "p": PASSWORD}))["login"]
    await mail.gql.data(REQUEST, {"e": user.email})
    token = await _reset_email_token(mail)
    # Stored only as its hash.
    async with mail.database.session(TenantScope.cross_clinic()) as db:
        stored = list(
            await db.scalars(
                select(UserToken.token_hash).where(UserToken.purpose == "password_reset")
            )
        )
    assert stored == [hash_refresh_token(token)] and token not in stored

    assert (await mail.gql.data(RESET, {"t": token, "p": NEW_PASSWORD}))["resetPassword"] is True
    assert (
        await mail.gql.error_code(RESET, {"t": token, "p": "another-new-passphrase-1"})
        == "VALIDATION"
    )
    assert await mail.gql.error_code(LOGIN, {"e": user.email, "p": PASSWORD}) is not None
    assert (await mail.gql.data(LOGIN, {"e": user.email, "p": NEW_PASSWORD}))["login"][
        "refreshToken"
    ]
    # The login that existed before the reset is over.
    assert await mail.gql.error_code(REFRESH, {"t": other_login["refreshToken"]}) is not None
    async with mail.database.session(TenantScope.cross_clinic()) as db:
        live = await db.scalars(
            select(RefreshToken).where(
                RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
            )
        )
        assert len(list(live)) == 1  # only the new login


async def test_expired_and_superseded_links_are_refused(mail: MailApp) -> None:
    user = mail.world.a.counselor
    await mail.gql.data(REQUEST, {"e": user.email})
    first = await _reset_email_token(mail)
    await mail.gql.data(REQUEST, {"e": user.email})
    second = await _reset_email_token(mail)
    # Asking again voids the earlier link.
    assert await mail.gql.error_code(RESET, {"t": first, "p": NEW_PASSWORD}) == "VALIDATION"
    async with mail.database.transaction(TenantScope.cross_clinic()) as db:
        await db.execute(update(UserToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await mail.gql.error_code(RESET, {"t": second, "p": NEW_PASSWORD}) == "VALIDATION"
    assert await mail.gql.error_code(RESET, {"t": "made-up", "p": NEW_PASSWORD}) == "VALIDATION"
    assert (await mail.gql.data(LOGIN, {"e": user.email, "p": PASSWORD}))["login"]["refreshToken"]


async def test_reset_requests_are_rate_limited(mail: MailApp) -> None:
    answers = [await mail.gql.execute(REQUEST, {"e": "someone@clinic-a.test"}) for _ in range(12)]
    codes = [(a.get("errors") or [{}])[0].get("extensions", {}).get("code") for a in answers]
    # RATE_LIMIT_AUTH (10/minute per account and per IP), like login.
    assert codes[:10] == [None] * 10
    assert codes[10:] == ["RATE_LIMITED"] * 2


async def test_invitation_email_carries_a_working_single_use_link(mail: MailApp) -> None:
    a = mail.world.a
    create = """mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } invitationToken } }"""
    created = await mail.gql.data(
        create,
        {
            "i": {
                "email": "new.counselor@clinic-a.test",
                "fullName": "Noor Haddad",
                "role": "COUNSELOR",
            }
        },
        user=a.admin,
    )
    await mail.deliver()
    sent = mail.providers.sendgrid.accepted[-1]["mail"]
    assert sent["subject"] == f"You are invited to {a.clinic.name}"
    assert sent["personalizations"][0]["to"] == [{"email": "new.counselor@clinic-a.test"}]
    token = _link_token(sent["content"][0]["value"])
    assert token == created["createUser"]["invitationToken"]
    accept = """mutation($t: String!, $p: String!) { acceptInvitation(token: $t, password: $p) { user { email } } }"""
    data = await mail.gql.data(accept, {"t": token, "p": NEW_PASSWORD})
    assert data["acceptInvitation"]["user"]["email"] == "new.counselor@clinic-a.test"
    assert await mail.gql.error_code(accept, {"t": token, "p": NEW_PASSWORD}) == "VALIDATION"
    [message] = [m for m in await mail.messages(a.admin) if m["notification"] == "user_invitation"]
    assert message["status"] == "SENT"


async def test_resent_invitation_voids_the_first_link(mail: MailApp) -> None:
    a = mail.world.a
    create = """mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } invitationToken } }"""
    created = (
        await mail.gql.data(
            create,
            {"i": {"email": "late@clinic-a.test", "fullName": "Late Joiner", "role": "COUNSELOR"}},
            user=a.admin,
        )
    )["createUser"]
    resend = "mutation($u: ID!) { resendInvitation(userId: $u) { id } }"
    await mail.gql.data(resend, {"u": created["user"]["id"]}, user=a.admin)
    # Clinic B's admin cannot resend A's invitations.
    assert (
        await mail.gql.error_code(resend, {"u": created["user"]["id"]}, user=mail.world.b.admin)
        == "NOT_FOUND"
    )
    await mail.deliver()
    fresh = _link_token(mail.providers.sendgrid.accepted[-1]["mail"]["content"][0]["value"])
    assert fresh != created["invitationToken"]
    accept = """mutation($t: String!, $p: String!) { acceptInvitation(token: $t, password: $p) { user { id } } }"""
    assert (
        await mail.gql.error_code(accept, {"t": created["invitationToken"], "p": NEW_PASSWORD})
        == "VALIDATION"
    )
    assert (await mail.gql.data(accept, {"t": fresh, "p": NEW_PASSWORD}))["acceptInvitation"]
