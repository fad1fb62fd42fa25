"""Clinic staff and patient accounts: create, invite, look up."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.auth import passwords
from gateway.auth.permissions import ASSIGNABLE_ROLES, Action, require, require_clinic, user_filter
from gateway.auth.tokens import new_refresh_token
from gateway.db.models import Clinic, Role, User, UserToken
from gateway.db.types import utcnow
from gateway.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.events import EventContext
from gateway.notifications.accounts import send_invitation
from gateway.services import audit, validation
from gateway.services.context import ServiceContext

INVITATION_TTL = timedelta(days=7)


async def get_user(ctx: ServiceContext, user_id: uuid.UUID) -> User:
    principal = ctx.require_principal()
    user = await ctx.db.scalar(select(User).where(User.id == user_id, user_filter(principal)))
    if user is None:
        raise NotFound("User not found.")
    return user


async def list_users(
    ctx: ServiceContext, clinic_id: uuid.UUID, role: Role | None = None
) -> list[User]:
    principal = ctx.require_principal()
    require(principal, Action.USER_LIST)
    require_clinic(principal, clinic_id)
    query = select(User).where(User.clinic_id == clinic_id, user_filter(principal))
    if role is not None:
        query = query.where(User.role == role)
    return list(await ctx.db.scalars(query.order_by(User.full_name, User.id)))


async def create_user(
    ctx: ServiceContext,
    *,
    email: str,
    full_name: str,
    role: Role,
    clinic_id: uuid.UUID | None,
    password: str | None,
) -> tuple[User, str | None]:
    """Create an account. Without a password it is an invitation: the returned
    single-use token lets the person choose their own (the email issue mails it)."""
    principal = ctx.require_principal()
    require(principal, Action.USER_MANAGE)
    clinic_id = clinic_id or principal.clinic_id
    if clinic_id is None:
        raise ValidationFailed("`clinicId` is required for a platform admin.", field="clinicId")
    require_clinic(principal, clinic_id)
    if role not in ASSIGNABLE_ROLES.get(principal.role, frozenset()):
        raise Forbidden(f"You cannot create {role.value} accounts.", field="role")
    if await ctx.db.scalar(select(Clinic.id).where(Clinic.id == clinic_id)) is None:
        raise NotFound("Clinic not found.", field="clinicId")
    address = validation.email(email)
    name = validation.required_text(full_name, "fullName", max_length=200)
    if password is not None:
        passwords.check_password_policy(password)
    # The email must be unique across every clinic, but the request's session only
    # sees its own clinic: ask the database through the unique constraint instead.
    user = User(
        clinic_id=clinic_id,
        email=address,
        full_name=name,
        role=role,
        # An invited account cannot log in until the invitation is accepted.
        password_hash=passwords.hash_password(password) if password else "!invited",
        is_active=password is not None,
    )
    ctx.db.add(user)
    try:
        await ctx.db.flush()
    except IntegrityError as exc:
        raise Conflict("An account with that email already exists.", field="email") from exc
    invite_token = None
    if password is None:
        invite_token, token_hash = new_refresh_token()
        ctx.db.add(
            UserToken(
                user_id=user.id,
                clinic_id=clinic_id,
                purpose="invite",
                token_hash=token_hash,
                expires_at=utcnow() + INVITATION_TTL,
            )
        )
        await send_invitation(
            EventContext.from_service(ctx), user, invite_token, INVITATION_TTL.days
        )
    audit.record(
        ctx.db,
        "user.invited" if password is None else "user.created",
        clinic_id=clinic_id,
        actor_user_id=principal.user_id,
        target_type="user",
        target_id=user.id,
        details={"role": role.value},
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return user, invite_token
