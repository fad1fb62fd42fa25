"""`twoFactorStatus`: whether the caller uses 2FA, must, and how many recovery codes remain."""

from __future__ import annotations

import strawberry

from gateway.services import two_factor
from schema.context import Info


@strawberry.type
class TwoFactorStatus:
    enabled: bool
    required: bool = strawberry.field(description="Your role must use 2FA on this server")
    recovery_codes_remaining: int


@strawberry.type
class TwoFactorQuery:
    @strawberry.field(
        description="Your two-factor authentication settings (also with an enroll-only token)"
    )
    async def two_factor_status(self, info: Info) -> TwoFactorStatus:
        s = await two_factor.status(info.context)
        return TwoFactorStatus(
            enabled=s.enabled,
            required=s.required,
            recovery_codes_remaining=s.recovery_codes_remaining,
        )
