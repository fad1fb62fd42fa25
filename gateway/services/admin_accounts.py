"""Operator-side account creation (the `santana create-admin` command)."""

from __future__ import annotations

from sqlalchemy import select

from gateway.auth import passwords
from gateway.db.engine import Database
from gateway.db.models import Role, User
from gateway.db.tenancy import TenantScope
from gateway.errors import Conflict
from gateway.services import audit, validation
from gateway.settings import Settings


async def create_platform_admin(
    settings: Settings, *, email: str, full_name: str, password: str
) -> User:
    address = validation.email(email)
    name = validation.required_text(full_name, "name", max_length=200)
    passwords.check_password_policy(password)
    database = Database(settings.database_url)
    try:
        async with database.transaction(TenantScope.cross_clinic()) as db:
            if await db.scalar(select(User.id).where(User.email == address)):
                raise Conflict("An account with that email already exists.", field="email")
            user = User(
                email=address,
                full_name=name,
                role=Role.PLATFORM_ADMIN,
                password_hash=passwords.hash_password(password),
                clinic_id=None,
            )
            db.add(user)
            await db.flush()
            audit.record(
                db,
                "user.platform_admin_created",
                clinic_id=None,
                actor_user_id=None,
                target_type="user",
                target_id=user.id,
                details={"via": "cli"},
            )
            return user
    finally:
        await database.dispose()
