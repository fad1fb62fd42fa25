"""Clinics (tenants): created and listed by platform admins."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.auth.permissions import Action, clinic_filter, require, require_clinic
from gateway.db.models import Clinic
from gateway.errors import Conflict, NotFound
from gateway.services import audit, validation
from gateway.services.context import ServiceContext


async def get_clinic(ctx: ServiceContext, clinic_id: uuid.UUID) -> Clinic:
    principal = ctx.require_principal()
    require(principal, Action.CLINIC_READ)
    clinic = await ctx.db.scalar(
        select(Clinic).where(Clinic.id == clinic_id, clinic_filter(principal, Clinic.id))
    )
    if clinic is None:
        raise NotFound("Clinic not found.")
    return clinic


async def own_clinic(ctx: ServiceContext) -> Clinic:
    principal = ctx.require_principal()
    if principal.clinic_id is None:
        raise NotFound("Platform admins belong to no clinic; pass a clinic id.")
    return await get_clinic(ctx, principal.clinic_id)


async def list_clinics(ctx: ServiceContext) -> list[Clinic]:
    require(ctx.require_principal(), Action.CLINIC_LIST)
    return list(await ctx.db.scalars(select(Clinic).order_by(Clinic.name, Clinic.id)))


async def create_clinic(
    ctx: ServiceContext, *, name: str, slug: str, timezone: str, currency: str
) -> Clinic:
    principal = ctx.require_principal()
    require(principal, Action.CLINIC_CREATE)
    clinic = Clinic(
        name=validation.required_text(name, "name", max_length=200),
        slug=validation.slug(slug),
        timezone=validation.timezone(timezone),
        currency=validation.currency(currency),
    )
    if await ctx.db.scalar(select(Clinic.id).where(Clinic.slug == clinic.slug)):
        raise Conflict("A clinic with that slug already exists.", field="slug")
    ctx.db.add(clinic)
    try:
        await ctx.db.flush()
    except IntegrityError as exc:
        raise Conflict("A clinic with that slug already exists.", field="slug") from exc
    audit.record(
        ctx.db,
        "clinic.created",
        clinic_id=clinic.id,
        actor_user_id=principal.user_id,
        target_type="clinic",
        target_id=clinic.id,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return clinic


def check_same_clinic(ctx: ServiceContext, clinic_id: uuid.UUID) -> None:
    require_clinic(ctx.require_principal(), clinic_id)
