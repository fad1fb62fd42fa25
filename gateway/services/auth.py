"""Login, token refresh with rotation, logout, password change, invitations.

These run before a tenant is known (login looks a user up by email), so they use
their own cross-clinic transaction rather than the request's fenced session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import passwords
from gateway.auth.principal import Principal
from gateway.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from gateway.db.models import RefreshToken, User, UserToken
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import AccountLocked, Unauthenticated, ValidationFailed
from gateway.services import audit
from gateway.services.context import ServiceContext

INVALID_CREDENTIALS = "Invalid email or password."


@dataclass
class TokenPair:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    user: User


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def login(ctx: ServiceContext, email: str, password: str) -> TokenPair:
    email = normalise_email(email)
    failure: Exception | None = None
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.scalar(select(User).where(User.email == email).with_for_update())
        now = utcnow()
        ok = passwords.verify_password(user.password_hash if user else None, password)
        if user is None:
            failure, reason = Unauthenticated(INVALID_CREDENTIALS, reason="credentials"), "unknown_email"
        elif user.locked_until and user.locked_until > now:
            retry = int((user.locked_until - now).total_seconds()) + 1
            failure = AccountLocked(
                "Too many failed logins; the account is locked for a while.", retryAfterSeconds=retry
            )
            reason = "locked"
        elif not user.is_active:
            failure, reason = Unauthenticated(INVALID_CREDENTIALS, reason="credentials"), "inactive"
        elif not ok:
            user.failed_login_count += 1
            reason = "bad_password"
            if user.failed_login_count >= ctx.settings.login_max_failures:
                user.locked_until = now + timedelta(minutes=ctx.settings.login_lockout_minutes)
                user.failed_login_count = 0
                reason = "bad_password_locked"
            failure = Unauthenticated(INVALID_CREDENTIALS, reason="credentials")
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
            details={"reason": reason} if failure else {},
            request_id=ctx.request_id,
            ip=ctx.ip,
        )
        if failure is None:
            assert user is not None
            user.failed_login_count = 0
            user.locked_until = None
            if passwords.needs_rehash(user.password_hash):
                user.password_hash = passwords.hash_password(password)
            pair = _issue(ctx, db, user, family_id=uuid.uuid4())
    # Raised after the transaction commits, so the failure counter and audit row persist.
    if failure is not None:
        raise failure
    return pair


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
                    db, "auth.refresh_reuse", clinic_id=row.clinic_id, actor_user_id=row.user_id,
                    target_type="user", target_id=row.user_id, outcome="denied",
                    request_id=ctx.request_id, ip=ctx.ip,
                )
            failure = Unauthenticated("Refresh token was already used or revoked.", reason="revoked")
        elif row.expires_at <= now:
            failure = Unauthenticated("Refresh token expired; log in again.", reason="expired")
        elif not user.is_active:
            failure = Unauthenticated("Account is disabled.", reason="inactive")
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
            await db.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == principal.user_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        audit.record(
            db, "auth.logout", clinic_id=principal.clinic_id, actor_user_id=principal.user_id,
            target_type="user", target_id=principal.user_id, request_id=ctx.request_id, ip=ctx.ip,
        )


async def change_password(ctx: ServiceContext, current: str, new: str) -> None:
    principal = ctx.require_principal()
    passwords.check_password_policy(new)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.get(User, principal.user_id)
        if user is None or not passwords.verify_password(user.password_hash, current):
            raise ValidationFailed("Current password is wrong.", field="currentPassword")
        if current == new:
            raise ValidationFailed("New password must differ from the current one.", field="newPassword")
        now = utcnow()
        user.password_hash = passwords.hash_password(new)
        user.password_changed_at = now
        # Every other login ends: a changed password should lock out whoever else had it.
        await db.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            db, "auth.password_changed", clinic_id=user.clinic_id, actor_user_id=user.id,
            target_type="user", target_id=user.id, request_id=ctx.request_id, ip=ctx.ip,
        )


async def accept_invitation(ctx: ServiceContext, token: str, password: str) -> TokenPair:
    passwords.check_password_policy(password)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        row = await db.scalar(
            select(UserToken)
            .where(UserToken.token_hash == hash_refresh_token(token), UserToken.purpose == "invite")
            .with_for_update()
        )
        now = utcnow()
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise ValidationFailed("This invitation is invalid, used or expired.", field="token")
        user = await db.get(User, row.user_id)
        assert user is not None
        row.used_at = now
        user.password_hash = passwords.hash_password(password)
        user.password_changed_at = now
        user.is_active = True
        audit.record(
            db, "user.invitation_accepted", clinic_id=user.clinic_id, actor_user_id=user.id,
            target_type="user", target_id=user.id, request_id=ctx.request_id, ip=ctx.ip,
        )
        return _issue(ctx, db, user, family_id=uuid.uuid4())


def _issue(ctx: ServiceContext, db: AsyncSession, user: User, *, family_id: uuid.UUID) -> TokenPair:
    principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
    access, expires = issue_access_token(
        principal, ctx.settings.jwt_secret, ctx.settings.jwt_access_ttl_seconds
    )
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
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
