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
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from gateway.auth import passwords
from gateway.db.models import User
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.errors import ValidationFailed
from gateway.events import EventContext
from gateway.notifications.accounts import send_password_reset
from gateway.services import audit
from gateway.services.auth import (
    claim_user_token,
    normalise_email,
    replace_password,
    replace_user_token,
    void_user_tokens,
)
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
        token = await replace_user_token(db, user, PURPOSE, utcnow(), timedelta(minutes=ttl))
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
        await void_user_tokens(db, user.id, PURPOSE, now)
        # A reset also unlocks. Set before the shared step: it is the same UPDATE of the
        # user row, flushed when replace_password revokes the logins.
        user.failed_login_count = 0
        user.locked_until = None
        # Whoever else was logged in (perhaps whoever knew the old password) is logged out.
        await replace_password(ctx, db, user, new_password, now, "auth.password_reset")
