"""Login, token refresh, logout, password change, accepting an invitation."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.services import auth as auth_service
from gateway.services.auth import TokenPair
from schema.context import Info
from schema.types import User


@strawberry.type
class AuthPayload:
    access_token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`")
    access_token_expires_at: datetime
    refresh_token: str = strawberry.field(description="Single use: `refreshToken` returns a new one")
    user: User

    @classmethod
    def from_pair(cls, pair: TokenPair) -> AuthPayload:
        return cls(
            access_token=pair.access_token,
            access_token_expires_at=pair.access_token_expires_at,
            refresh_token=pair.refresh_token,
            user=User.from_model(pair.user),
        )


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Exchange email and password for tokens")
    async def login(self, info: Info, email: str, password: str) -> AuthPayload:
        return AuthPayload.from_pair(await auth_service.login(info.context, email, password))

    @strawberry.mutation(description="Exchange a refresh token for new tokens (the old one stops working)")
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        return AuthPayload.from_pair(await auth_service.refresh(info.context, refresh_token))

    @strawberry.mutation(description="End this login (or, without a token, every login of yours)")
    async def logout(self, info: Info, refresh_token: str | None = None) -> bool:
        await auth_service.logout(info.context, refresh_token)
        return True

    @strawberry.mutation(description="Change your password; ends your other logins")
    async def change_password(self, info: Info, current_password: str, new_password: str) -> bool:
        await auth_service.change_password(info.context, current_password, new_password)
        return True

    @strawberry.mutation(description="Set a password with an invitation token and log in")
    async def accept_invitation(self, info: Info, token: str, password: str) -> AuthPayload:
        return AuthPayload.from_pair(await auth_service.accept_invitation(info.context, token, password))
