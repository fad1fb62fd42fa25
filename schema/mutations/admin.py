"""Clinics and accounts: created by platform admins and clinic admins."""

from __future__ import annotations

import strawberry

from gateway.services import clinics as clinic_service
from gateway.services import users as user_service
from schema.context import Info
from schema.ids import from_global_id
from schema.transactions import Transactional
from schema.types import Clinic, Role, User


@strawberry.input
class CreateClinicInput:
    name: str
    slug: str = strawberry.field(description="Lower-case letters, digits and hyphens; unique")
    timezone: str = strawberry.field(
        default="UTC", description="IANA time zone, e.g. Europe/London"
    )
    currency: str = strawberry.field(default="USD", description="ISO 4217 code")


@strawberry.input
class CreateUserInput:
    email: str
    full_name: str
    role: Role  # type: ignore[valid-type]
    password: str | None = strawberry.field(
        default=None, description="Leave empty to invite: the payload then carries a one-time token"
    )
    clinic_id: strawberry.ID | None = strawberry.field(
        default=None, description="Platform admins only; others create users in their own clinic"
    )


@strawberry.type
class CreateUserPayload:
    user: User
    invitation_token: str | None = strawberry.field(
        description="Present when no password was given: hand it to the person to set theirs"
    )


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        extensions=[Transactional()], description="Create a clinic (platform admins)"
    )
    async def create_clinic(self, info: Info, input: CreateClinicInput) -> Clinic:
        row = await clinic_service.create_clinic(
            info.context,
            name=input.name,
            slug=input.slug,
            timezone=input.timezone,
            currency=input.currency,
        )
        return Clinic.from_model(row)

    @strawberry.mutation(extensions=[Transactional()], description="Create or invite an account")
    async def create_user(self, info: Info, input: CreateUserInput) -> CreateUserPayload:
        user, token = await user_service.create_user(
            info.context,
            email=input.email,
            full_name=input.full_name,
            role=input.role,
            clinic_id=from_global_id(input.clinic_id, "Clinic", "clinicId")
            if input.clinic_id
            else None,
            password=input.password,
        )
        return CreateUserPayload(user=User.from_model(user), invitation_token=token)
