"""Two-factor authentication (TOTP) for accounts: enroll, confirm, disable, recovery codes.

Enrollment is two steps so a typo in the authenticator app cannot lock anyone
out: `start` stores a pending secret, `confirm` with a code from the app turns it
on and returns ten recovery codes, shown this once and stored hashed.

Platform and clinic admins must use 2FA when TWO_FACTOR_REQUIRED is on (the
default in production): their password-only login yields an access token that
can do nothing but enroll (see gateway.auth.tokens.ENROLL_SCOPE), and they cannot
turn 2FA off.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.auth.tokens import TwoFactorEnrollmentRequired
from gateway.db.models import RecoveryCode, Role, User
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import Conflict, Forbidden, GatewayError, NotFound, Unauthenticated
from gateway.security import totp
from gateway.services import audit
from gateway.services.context import ServiceContext

ADMIN_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.CLINIC_ADMIN})


class InvalidTwoFactorCode(GatewayError):
    code = "TWO_FACTOR_CODE_INVALID"

    def __init__(self) -> None:
        super().__init__("That code is not valid (or was already used).", field="code")


def required_for(ctx: ServiceContext, user: User) -> bool:
    return ctx.settings.two_factor_required_for_admins and user.role in ADMIN_ROLES


def caller(ctx: ServiceContext) -> tuple[Principal, bool]:
    """The caller, and whether they hold an enroll-only token (admins without 2FA in production)."""
    if ctx.principal is not None:
        return ctx.principal, False
    if isinstance(ctx.auth_error, TwoFactorEnrollmentRequired):
        return ctx.auth_error.principal, True
    raise ctx.auth_error or Unauthenticated("Log in first.", reason="missing")


async def check_code(ctx: ServiceContext, db: AsyncSession, user: User, code: str) -> str | None:
    """Accept a current TOTP code or an unused recovery code; return which, or None."""
    if user.totp_secret_encrypted is None:
        return None
    if totp.looks_like_totp(code):
        step = totp.verify(
            ctx.cipher.decrypt(user.totp_secret_encrypted), code, user.totp_last_step
        )
        if step is None:
            return None
        user.totp_last_step = step
        return "totp"
    row = await db.scalar(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == totp.hash_recovery_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    if row is None:
        return None
    row.used_at = utcnow()
    return "recovery_code"


async def _locked_user(db: AsyncSession, principal: Principal) -> User:
    user = await db.scalar(select(User).where(User.id == principal.user_id).with_for_update())
    if user is None or not user.is_active:
        raise NotFound("Account not found.")
    return user


def _audit(
    ctx: ServiceContext, db: AsyncSession, user: User, action: str, **details: object
) -> None:
    audit.record(
        db,
        action,
        clinic_id=user.clinic_id,
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details=dict(details),
        request_id=ctx.request_id,
        ip=ctx.ip,
    )


@dataclass
class Enrollment:
    secret: str
    otpauth_uri: str


async def start_enrollment(ctx: ServiceContext) -> Enrollment:
    principal, _ = caller(ctx)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await _locked_user(db, principal)
        if user.totp_enabled_at is not None:
            raise Conflict(
                "Two-factor authentication is already on; turn it off first to change devices."
            )
        secret = totp.new_secret()
        user.totp_pending_secret_encrypted = ctx.cipher.encrypt(secret)
        _audit(ctx, db, user, "auth.2fa_enrollment_started")
        uri = totp.provisioning_uri(secret, user.email, ctx.settings.two_factor_issuer)
    return Enrollment(secret=secret, otpauth_uri=uri)


async def confirm_enrollment(ctx: ServiceContext, code: str) -> tuple[list[str], User, bool]:
    """Turn 2FA on; returns the recovery codes, the user, and whether the caller was enroll-only."""
    principal, enroll_only = caller(ctx)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await _locked_user(db, principal)
        if user.totp_enabled_at is not None:
            raise Conflict("Two-factor authentication is already on.")
        if user.totp_pending_secret_encrypted is None:
            raise Conflict("Start the enrollment first (startTwoFactorEnrollment).")
        step = totp.verify(ctx.cipher.decrypt(user.totp_pending_secret_encrypted), code, None)
        if step is None:
            raise InvalidTwoFactorCode()
        user.totp_secret_encrypted = user.totp_pending_secret_encrypted
        user.totp_pending_secret_encrypted = None
        user.totp_enabled_at = utcnow()
        user.totp_last_step = step
        codes = await _replace_recovery_codes(db, user)
        _audit(ctx, db, user, "auth.2fa_enabled")
    return codes, user, enroll_only


async def disable(ctx: ServiceContext, code: str) -> None:
    principal = ctx.require_principal()
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await _locked_user(db, principal)
        if user.totp_enabled_at is None:
            raise Conflict("Two-factor authentication is not on.")
        if required_for(ctx, user):
            raise Forbidden(
                "Two-factor authentication is required for your role and cannot be turned off."
            )
        method = await check_code(ctx, db, user, code)
        if method is None:
            raise InvalidTwoFactorCode()
        user.totp_secret_encrypted = user.totp_pending_secret_encrypted = None
        user.totp_enabled_at = user.totp_last_step = None
        await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        _audit(ctx, db, user, "auth.2fa_disabled", method=method)


async def regenerate_recovery_codes(ctx: ServiceContext, code: str) -> list[str]:
    principal = ctx.require_principal()
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await _locked_user(db, principal)
        if user.totp_enabled_at is None:
            raise Conflict("Two-factor authentication is not on.")
        if await check_code(ctx, db, user, code) is None:
            raise InvalidTwoFactorCode()
        codes = await _replace_recovery_codes(db, user)
        _audit(ctx, db, user, "auth.2fa_recovery_codes_regenerated")
    return codes


@dataclass
class Status:
    enabled: bool
    required: bool
    recovery_codes_remaining: int


async def status(ctx: ServiceContext) -> Status:
    principal, _ = caller(ctx)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.get(User, principal.user_id)
        if user is None:
            raise NotFound("Account not found.")
        remaining = await db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        return Status(
            user.totp_enabled_at is not None, required_for(ctx, user), int(remaining or 0)
        )


async def _replace_recovery_codes(db: AsyncSession, user: User) -> list[str]:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = totp.new_recovery_codes()
    db.add_all(
        RecoveryCode(
            user_id=user.id, clinic_id=user.clinic_id, code_hash=totp.hash_recovery_code(c)
        )
        for c in codes
    )
    return codes
