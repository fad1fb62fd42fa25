"""Send an invitation again: a fresh set-password link, the earlier ones void."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from gateway.auth.permissions import Action, require, require_clinic, user_filter
from gateway.db.models import User
from gateway.db.types import utcnow
from gateway.errors import NotFound, ValidationFailed
from gateway.events import EventContext
from gateway.notifications.accounts import send_invitation
from gateway.services import audit
from gateway.services.auth import replace_user_token
from gateway.services.context import ServiceContext
from gateway.services.users import INVITATION_TTL


async def resend_invitation(ctx: ServiceContext, user_id: uuid.UUID) -> User:
    principal = ctx.require_principal()
    require(principal, Action.USER_MANAGE)
    user = await ctx.db.scalar(select(User).where(User.id == user_id, user_filter(principal)))
    if user is None or user.clinic_id is None:
        raise NotFound("User not found.")
    require_clinic(principal, user.clinic_id)
    if user.is_active:
        raise ValidationFailed("This account is already active.", field="userId")
    token = await replace_user_token(ctx.db, user, "invite", utcnow(), INVITATION_TTL)
    await send_invitation(EventContext.from_service(ctx), user, token, INVITATION_TTL.days)
    audit.record(
        ctx.db,
        "user.invitation_resent",
        clinic_id=user.clinic_id,
        actor_user_id=principal.user_id,
        target_type="user",
        target_id=user.id,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return user
