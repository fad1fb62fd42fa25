"""Login, token refresh with rotation, logout, password change, invitations.

These run before a tenant is known (login looks a user up by email), so they use
their own cross-clinic transaction rather than the request's fenced session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import passwords
from gateway.auth.principal import Principal
from gateway.auth.tokens import (
    ENROLL_SCOPE,
    decode_challenge_token,
    hash_refresh_token,
    issue_access_token,
    issue_challenge_token,
    new_refresh_token,
)
from gateway.db.models import RefreshToken, User, UserToken
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import AccountLocked, GatewayError, Unauthenticated, ValidationFailed
from gateway.services import audit, two_factor
from gateway.services.context import ServiceContext

INVALID_CREDENTIALS = "Invalid email or password."
# An enroll-only token is short: enough to scan a QR code and type one code.
ENROLL_TOKEN_TTL_SECONDS = 600


@dataclass
class TokenPair:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    user: User


def normalise_email(email: str) -> str:
    return email.strip().lower()


class TwoFactorChallenge(GatewayError):
    """The password was right; a TOTP or recovery code must follow (verifyTwoFactor)."""

    code = "TWO_FACTOR_REQUIRED"

    def __init__(self, challenge_token: str) -> None:
        super().__init__("Enter the code from your authenticator app.")
        self.challenge_token = challenge_token  # not an extension: never echoed by accident


class EnrollmentOnlyLogin(GatewayError):
    """An admin without 2FA where it is required: a token that can only enroll."""

    code = "TWO_FACTOR_ENROLLMENT_REQUIRED"

    def __init__(self, access_token: str, expires: datetime, user: User) -> None:
        super().__init__("Set up two-factor authentication to finish logging in.")
        self.access_token, self.expires, self.user = access_token, expires, user


async def login(
    ctx: ServiceContext, email: str, password: str, otp: str | None = None
) -> TokenPair:
    """Tokens for email + password (+ `otp` when the account uses 2FA).

    Raises TwoFactorChallenge when a code is needed and none was sent, and
    EnrollmentOnlyLogin when an admin must first set 2FA up.
    """
    email = normalise_email(email)
    failure: Exception | None = None
    method = "password"
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.scalar(select(User).where(User.email == email).with_for_update())
        now = utcnow()
        ok = passwords.verify_password(user.password_hash if user else None, password)
        if user is None:
            failure, reason = (
                Unauthenticated(INVALID_CREDENTIALS, reason="credentials"),
                "unknown_email",
            )
        elif user.locked_until and user.locked_until > now:
            failure, reason = _account_locked(user.locked_until, now), "locked"
        elif not user.is_active:
            failure, reason = Unauthenticated(INVALID_CREDENTIALS, reason="credentials"), "inactive"
        elif not ok:
            reason = _count_failure(ctx, user, now, "bad_password")
            failure = Unauthenticated(INVALID_CREDENTIALS, reason="credentials")
        elif user.totp_enabled_at is not None and not otp:
            failure = TwoFactorChallenge(issue_challenge_token(user.id, ctx.settings.jwt_secret))
            reason = "second_factor_needed"
        elif user.totp_enabled_at is not None:
            method, reason, failure = await _check_second_factor(ctx, db, user, otp or "", now)
        elif two_factor.required_for(ctx, user):
            access, expires = issue_access_token(
                Principal(user.id, user.role, user.clinic_id),
                ctx.settings.jwt_secret,
                ENROLL_TOKEN_TTL_SECONDS,
                scope=ENROLL_SCOPE,
            )
            failure, reason = (
                EnrollmentOnlyLogin(access, expires, user),
                "two_factor_enrollment_needed",
            )
        else:
            reason = ""
        audit.record(
            db,
            "auth.login",
            clinic_id=user.clinic_id if user else None,
            actor_user_id=user.id if user else None,
            target_type="user",
            target_id=user.id if user else None,
            outcome="failure" if failure else "success",
            details={"reason": reason}
            if failure
            else ({"method": method} if method != "password" else {}),
            request_id=ctx.request_id,
            ip=ctx.ip,
        )
        if failure is None:
            assert user is not None
            pair = _succeed(ctx, db, user, password)
    # Raised after the transaction commits, so the failure counter and audit row persist.
    if failure is not None:
        raise failure
    return pair


async def verify_two_factor(ctx: ServiceContext, challenge_token: str, code: str) -> TokenPair:
    """Second step of a 2FA login: the challenge from `login` plus a TOTP or recovery code."""
    user_id = decode_challenge_token(challenge_token, ctx.settings.jwt_verification_secrets())
    failure: Exception | None = None
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.scalar(select(User).where(User.id == user_id).with_for_update())
        now = utcnow()
        method = ""
        if user is None or not user.is_active or user.totp_enabled_at is None:
            raise Unauthenticated("The login challenge is invalid; log in again.", reason="invalid")
        if user.locked_until and user.locked_until > now:
            failure, reason = _account_locked(user.locked_until, now), "locked"
        else:
            method, reason, failure = await _check_second_factor(ctx, db, user, code, now)
        audit.record(
            db,
            "auth.login",
            clinic_id=user.clinic_id,
            actor_user_id=user.id,
            target_type="user",
            target_id=user.id,
            outcome="failure" if failure else "success",
            details={"reason": reason} if failure else {"method": method},
            request_id=ctx.request_id,
            ip=ctx.ip,
        )
        if failure is None:
            user.failed_login_count = 0
            user.locked_until = None
            pair = _issue(ctx, db, user, family_id=uuid.uuid4())
    if failure is not None:
        raise failure
    return pair


def _account_locked(until: datetime, now: datetime) -> AccountLocked:
    """The error for a login while the account is locked, with when to try again."""
    retry = int((until - now).total_seconds()) + 1
    return AccountLocked(
        "Too many failed logins; the account is locked for a while.",
        retryAfterSeconds=retry,
    )


async def _check_second_factor(
    ctx: ServiceContext, db: AsyncSession, user: User, code: str, now: datetime
) -> tuple[str, str, Exception | None]:
    """(method, audit reason, failure) for a TOTP or recovery code; a wrong one counts."""
    method = await two_factor.check_code(ctx, db, user, code) or ""
    if method:
        return method, "", None
    reason = _count_failure(ctx, user, now, "bad_second_factor")
    return "", reason, Unauthenticated("Invalid two-factor code.", reason="two_factor_code")


def _count_failure(ctx: ServiceContext, user: User, now: datetime, reason: str) -> str:
    """One more failed attempt; locks the account at LOGIN_MAX_FAILURES. Returns the audit reason."""
    user.failed_login_count += 1
    if user.failed_login_count >= ctx.settings.login_max_failures:
        user.locked_until = now + timedelta(minutes=ctx.settings.login_lockout_minutes)
        user.failed_login_count = 0
        return f"{reason}_locked"
    return reason


def _succeed(ctx: ServiceContext, db: AsyncSession, user: User, password: str) -> TokenPair:
    user.failed_login_count = 0
    user.locked_until = None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return _issue(ctx, db, user, family_id=uuid.uuid4())


async def refresh(ctx: ServiceContext, refresh_token: str) -> TokenPair:
    token_hash = hash_refresh_token(refresh_token)
    failure: Exception | None = None
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        row = await db.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        )
        now = utcnow()
        user = await db.get(User, row.user_id) if row else None
        if row is None or user is None:
            failure = Unauthenticated("Refresh token is invalid.", reason="invalid")
        elif row.used_at is not None or row.revoked_at is not None:
            if row.revoked_at is None:
                # A rotated token came back: assume theft and end the whole login.
                await _revoke_family(db, row.family_id, now)
                audit.record(
                    db,
                    "auth.refresh_reuse",
                    clinic_id=row.clinic_id,
                    actor_user_id=row.user_id,
                    target_type="user",
                    target_id=row.user_id,
                    outcome="denied",
                    request_id=ctx.request_id,
                    ip=ctx.ip,
                )
            failure = Unauthenticated(
                "Refresh token was already used or revoked.", reason="revoked"
            )
        elif row.expires_at <= now:
            failure = Unauthenticated("Refresh token expired; log in again.", reason="expired")
        elif not user.is_active:
            failure = Unauthenticated("Account is disabled.", reason="inactive")
        elif two_factor.required_for(ctx, user) and user.totp_enabled_at is None:
            # A login from before 2FA became mandatory does not outlive the rule.
            failure = Unauthenticated(
                "Two-factor authentication is now required; log in again to set it up.",
                reason="two_factor_enrollment",
            )
        else:
            row.used_at = now
            pair = _issue(ctx, db, user, family_id=row.family_id)
    if failure is not None:
        raise failure
    return pair


async def logout(ctx: ServiceContext, refresh_token: str | None) -> None:
    """Revoke the login that `refresh_token` belongs to (or every login of the caller)."""
    principal = ctx.require_principal()
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        now = utcnow()
        if refresh_token:
            row = await db.scalar(
                select(RefreshToken).where(
                    RefreshToken.token_hash == hash_refresh_token(refresh_token),
                    RefreshToken.user_id == principal.user_id,
                )
            )
            if row is not None:
                await _revoke_family(db, row.family_id, now)
        else:
            await revoke_logins(db, principal.user_id, now)
        record_own_action(ctx, db, "auth.logout", principal.user_id, principal.clinic_id)


async def change_password(ctx: ServiceContext, current: str, new: str) -> None:
    principal = ctx.require_principal()
    passwords.check_password_policy(new)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.get(User, principal.user_id)
        if user is None or not passwords.verify_password(user.password_hash, current):
            raise ValidationFailed("Current password is wrong.", field="currentPassword")
        if current == new:
            raise ValidationFailed(
                "New password must differ from the current one.", field="newPassword"
            )
        await replace_password(ctx, db, user, new, utcnow(), "auth.password_changed")


async def replace_password(
    ctx: ServiceContext, db: AsyncSession, user: User, new: str, now: datetime, action: str
) -> None:
    """Set `user`'s new password, end all of their logins and audit `action` as theirs.

    Every login ends: a changed password should lock out whoever else had the old one.
    """
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    await revoke_logins(db, user.id, now)
    record_own_action(ctx, db, action, user.id, user.clinic_id)


def record_own_action(
    ctx: ServiceContext,
    db: AsyncSession,
    action: str,
    user_id: uuid.UUID,
    clinic_id: uuid.UUID | None,
) -> None:
    """Audit a successful `action` that a user took on their own account."""
    audit.record(
        db,
        action,
        clinic_id=clinic_id,
        actor_user_id=user_id,
        target_type="user",
        target_id=user_id,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )


async def claim_user_token(
    db: AsyncSession, token: str, purpose: str, invalid: str, now: datetime
) -> UserToken:
    """The live single-use token of `purpose` (row-locked), or ValidationFailed(`invalid`)."""
    row = await db.scalar(
        select(UserToken)
        .where(UserToken.token_hash == hash_refresh_token(token), UserToken.purpose == purpose)
        .with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise ValidationFailed(invalid, field="token")
    return row


async def void_user_tokens(
    db: AsyncSession, user_id: uuid.UUID, purpose: str, now: datetime
) -> None:
    """Use up the user's unused tokens of `purpose`: only the newest link works."""
    await db.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user_id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
        .values(used_at=now)
    )


async def replace_user_token(
    db: AsyncSession, user: User, purpose: str, now: datetime, ttl: timedelta
) -> str:
    """A fresh single-use token of `purpose` for `user`; the earlier unused ones are void."""
    await void_user_tokens(db, user.id, purpose, now)
    token, token_hash = new_refresh_token()
    db.add(
        UserToken(
            user_id=user.id,
            clinic_id=user.clinic_id,
            purpose=purpose,
            token_hash=token_hash,
            expires_at=now + ttl,
        )
    )
    return token


async def revoke_logins(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """End every login of the user (each of its refresh-token families)."""
    await _revoke(db, RefreshToken.user_id == user_id, now)


async def accept_invitation(ctx: ServiceContext, token: str, password: str) -> TokenPair:
    passwords.check_password_policy(password)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        now = utcnow()
        row = await claim_user_token(
            db, token, "invite", "This invitation is invalid, used or expired.", now
        )
        user = await db.get(User, row.user_id)
        assert user is not None
        row.used_at = now
        # The first password, not replace_password: an invited account has no logins to end.
        user.password_hash = passwords.hash_password(password)
        user.password_changed_at = now
        user.is_active = True
        record_own_action(ctx, db, "user.invitation_accepted", user.id, user.clinic_id)
        return _issue(ctx, db, user, family_id=uuid.uuid4())


async def issue_tokens(ctx: ServiceContext, user: User) -> TokenPair:
    """A fresh login for `user` (after an enroll-only login completed its 2FA setup)."""
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        return _issue(ctx, db, user, family_id=uuid.uuid4())


def _issue(ctx: ServiceContext, db: AsyncSession, user: User, *, family_id: uuid.UUID) -> TokenPair:
    principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
    access, expires = issue_access_token(
        principal, ctx.settings.jwt_secret, ctx.settings.jwt_access_ttl_seconds
    )
    # The payload's nested fields (e.g. `user { clinic }`) resolve as the new login.
    ctx.sign_in(principal)
    token, token_hash = new_refresh_token()
    db.add(
        RefreshToken(
            user_id=user.id,
            clinic_id=user.clinic_id,
            family_id=family_id,
            token_hash=token_hash,
            expires_at=utcnow() + timedelta(days=ctx.settings.refresh_token_ttl_days),
        )
    )
    return TokenPair(access, expires, token, user)


async def _revoke_family(db: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await _revoke(db, RefreshToken.family_id == family_id, now)


async def _revoke(db: AsyncSession, which: ColumnElement[bool], now: datetime) -> None:
    """Revoke the still-live refresh tokens that `which` selects."""
    await db.execute(
        update(RefreshToken).where(which, RefreshToken.revoked_at.is_(None)).values(revoked_at=now)
    )
