"""Password reset: ask for a link by email, then set a new password with it.

- `request_password_reset` answers the same whether or not the address has an
  account (the caller learns nothing); the mutation is rate-limited like login.
- The token is random, single-use, stored only as its SHA-256 hash, and expires
  after PASSWORD_RESET_TTL_MINUTES; asking again voids the earlier links.
- Using it sets the password, unlocks the account and ends every other login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth import passwords
from gateway.auth.tokens import new_refresh_token
from gateway.db.models import User, UserToken
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import ValidationFailed
from gateway.events import EventContext
from gateway.notifications.accounts import send_password_reset
from gateway.services import audit
from gateway.services.auth import claim_user_token, normalise_email, revoke_logins
from gateway.services.context import ServiceContext

log = logging.getLogger("santana.auth")

PURPOSE = "password_reset"
INVALID_TOKEN = "This reset link is invalid, used or expired."  # noqa: S105  (a message)


# Requests being worked on after their answer went out (kept so they are not collected).
_in_flight: set[asyncio.Task[None]] = set()


def request_password_reset_in_background(ctx: ServiceContext, email: str) -> None:
    """Answer now, work after: an existing account costs a token, an email and an audit
    row, and a caller timing the answer must not learn that the address is known."""
    task = asyncio.create_task(_quietly(request_password_reset(ctx, email)))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def _quietly(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception as exc:  # nobody awaits this: say what failed, never for whom
        log.error("password reset request failed: %s", type(exc).__name__)


async def settle() -> None:
    """Wait for the reset requests still being worked on (shutdown, tests)."""
    while _in_flight:
        await asyncio.gather(*_in_flight, return_exceptions=True)


async def request_password_reset(ctx: ServiceContext, email: str) -> None:
    ttl = ctx.settings.password_reset_ttl_minutes
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        user = await db.scalar(select(User).where(User.email == normalise_email(email)))
        # Invited accounts use their invitation; platform accounts have no clinic mailer.
        if user is None or not user.is_active or user.clinic_id is None:
            return
        now = utcnow()
        await _void_unused(db, user, now)
        token, token_hash = new_refresh_token()
        db.add(
            UserToken(
                user_id=user.id,
                clinic_id=user.clinic_id,
                purpose=PURPOSE,
                token_hash=token_hash,
                expires_at=now + timedelta(minutes=ttl),
            )
        )
        ectx = EventContext(
            db=db,
            cipher=ctx.cipher,
            settings=ctx.settings,
            hub=ctx.integrations,
            request_id=ctx.request_id,
        )
        await send_password_reset(ectx, user, token, ttl)
        audit.record(
            db,
            "auth.password_reset_requested",
            clinic_id=user.clinic_id,
            actor_user_id=None,
            target_type="user",
            target_id=user.id,
            request_id=ctx.request_id,
            ip=ctx.ip,
        )


async def reset_password(ctx: ServiceContext, token: str, new_password: str) -> None:
    passwords.check_password_policy(new_password)
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        now = utcnow()
        row = await claim_user_token(db, token, PURPOSE, INVALID_TOKEN, now)
        user = await db.get(User, row.user_id)
        if user is None or not user.is_active:
            raise ValidationFailed(INVALID_TOKEN, field="token")
        row.used_at = now
        await _void_unused(db, user, now)
        user.password_hash = passwords.hash_password(new_password)
        user.password_changed_at = now
        user.failed_login_count = 0
        user.locked_until = None
        # Whoever else was logged in (perhaps whoever knew the old password) is logged out.
        await revoke_logins(db, user.id, now)
        audit.record(
            db,
            "auth.password_reset",
            clinic_id=user.clinic_id,
            actor_user_id=user.id,
            target_type="user",
            target_id=user.id,
            request_id=ctx.request_id,
            ip=ctx.ip,
        )


async def _void_unused(db: AsyncSession, user: User, now: datetime) -> None:
    """Only the newest link works: asking again voids the ones before it."""
    await db.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.purpose == PURPOSE,
            UserToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
