"""Login (with two-factor), token refresh, logout, password change, invitations, 2FA setup.

A front end logs in in one or two steps:
1. `login(email, password)` -> tokens; or `twoFactorRequired: true` with a
   `challengeToken`; or `twoFactorEnrollmentRequired: true` with an access token
   that only works for the 2FA setup mutations (admins, when 2FA is required).
2. `verifyTwoFactor(challengeToken, code)` -> tokens. (`login(..., otp)` does both at once.)

Login, refresh and every 2FA code check count against the auth rate limit
(RATE_LIMIT_AUTH per account and per IP): over it, RATE_LIMITED with retryAfterSeconds.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.security.errors import RateLimited
from gateway.security.ratelimit import limiter_of
from gateway.services import auth as auth_service
from gateway.services import two_factor
from gateway.services.auth import EnrollmentOnlyLogin, TokenPair, TwoFactorChallenge
from schema.context import Info
from schema.types import User


async def _auth_limit(info: Info, account: str | None) -> None:
    limiter = limiter_of(info.context.request)
    if limiter is None:
        return
    try:
        await limiter.check_auth(ip=info.context.ip, account=account)
    except RateLimited as exc:
        response = info.context.response
        if response is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        raise


async def _signed_in(info: Info, pair: TokenPair) -> TokenPair:
    # The service signed the request in as the new login; hold its session's connection
    # before the payload's nested fields reach for it concurrently.
    await info.context.hold_connection()
    return pair


@strawberry.type
class AuthPayload:
    access_token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`")
    access_token_expires_at: datetime
    refresh_token: str = strawberry.field(
        description="Single use: `refreshToken` returns a new one"
    )
    user: User

    @classmethod
    def from_pair(cls, pair: TokenPair) -> AuthPayload:
        return cls(
            access_token=pair.access_token,
            access_token_expires_at=pair.access_token_expires_at,
            refresh_token=pair.refresh_token,
            user=User.from_model(pair.user),
        )


@strawberry.type(description="The answer to `login`: tokens, or what the second step needs")
class LoginPayload:
    access_token: str | None = strawberry.field(
        description="Null while a code is needed; enroll-only when twoFactorEnrollmentRequired"
    )
    access_token_expires_at: datetime | None
    refresh_token: str | None
    user: User | None
    two_factor_required: bool = strawberry.field(
        description="Send a code from the authenticator app (or a recovery code) to verifyTwoFactor"
    )
    challenge_token: str | None = strawberry.field(
        description="For verifyTwoFactor; valid 5 minutes"
    )
    two_factor_enrollment_required: bool = strawberry.field(
        description="This account must set up 2FA: accessToken only works for "
        "startTwoFactorEnrollment "
        "and confirmTwoFactorEnrollment (which then returns full tokens)"
    )

    @classmethod
    def from_pair(cls, pair: TokenPair) -> LoginPayload:
        return cls(
            access_token=pair.access_token,
            access_token_expires_at=pair.access_token_expires_at,
            refresh_token=pair.refresh_token,
            user=User.from_model(pair.user),
            two_factor_required=False,
            challenge_token=None,
            two_factor_enrollment_required=False,
        )


@strawberry.type
class TwoFactorEnrollment:
    secret: str = strawberry.field(
        description="Base32 secret, for typing into an authenticator app"
    )
    otpauth_uri: str = strawberry.field(description="otpauth:// URI, for a QR code")


@strawberry.type
class TwoFactorConfirmation:
    recovery_codes: list[str] = strawberry.field(
        description="Ten single-use codes for when the phone is lost. "
        "Shown only now: ask the user to save them"
    )
    auth: AuthPayload | None = strawberry.field(
        description="Full tokens, when the setup was made with an enroll-only login"
    )


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        description="Exchange email and password (and, with 2FA on, a code) for tokens"
    )
    async def login(
        self, info: Info, email: str, password: str, otp: str | None = None
    ) -> LoginPayload:
        await _auth_limit(info, email)
        try:
            pair = await auth_service.login(info.context, email, password, otp)
        except TwoFactorChallenge as challenge:
            return LoginPayload(
                access_token=None,
                access_token_expires_at=None,
                refresh_token=None,
                user=None,
                two_factor_required=True,
                challenge_token=challenge.challenge_token,
                two_factor_enrollment_required=False,
            )
        except EnrollmentOnlyLogin as enroll:
            return LoginPayload(
                access_token=enroll.access_token,
                access_token_expires_at=enroll.expires,
                refresh_token=None,
                user=User.from_model(enroll.user),
                two_factor_required=False,
                challenge_token=None,
                two_factor_enrollment_required=True,
            )
        return LoginPayload.from_pair(await _signed_in(info, pair))

    @strawberry.mutation(
        description="Second login step: the challengeToken from login and a TOTP or recovery code"
    )
    async def verify_two_factor(self, info: Info, challenge_token: str, code: str) -> AuthPayload:
        from gateway.auth.tokens import decode_challenge_token

        user_id = decode_challenge_token(
            challenge_token, info.context.settings.jwt_verification_secrets()
        )
        await _auth_limit(info, f"user:{user_id}")
        pair = await auth_service.verify_two_factor(info.context, challenge_token, code)
        return AuthPayload.from_pair(await _signed_in(info, pair))

    @strawberry.mutation(
        description="Exchange a refresh token for new tokens (the old one stops working)"
    )
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        # Per IP only: the account is not known until the token is checked.
        await _auth_limit(info, None)
        pair = await auth_service.refresh(info.context, refresh_token)
        return AuthPayload.from_pair(await _signed_in(info, pair))

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
        pair = await auth_service.accept_invitation(info.context, token, password)
        return AuthPayload.from_pair(await _signed_in(info, pair))

    @strawberry.mutation(
        description="Begin 2FA setup: add the secret to an authenticator app, then confirm"
    )
    async def start_two_factor_enrollment(self, info: Info) -> TwoFactorEnrollment:
        enrollment = await two_factor.start_enrollment(info.context)
        return TwoFactorEnrollment(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri)

    @strawberry.mutation(
        description="Finish 2FA setup with a code from the app; returns the recovery codes"
    )
    async def confirm_two_factor_enrollment(self, info: Info, code: str) -> TwoFactorConfirmation:
        principal, _ = two_factor.caller(info.context)
        await _auth_limit(info, f"user:{principal.user_id}")
        codes, user, enroll_only = await two_factor.confirm_enrollment(info.context, code)
        auth = (
            AuthPayload.from_pair(
                await _signed_in(info, await auth_service.issue_tokens(info.context, user))
            )
            if enroll_only
            else None
        )
        return TwoFactorConfirmation(recovery_codes=codes, auth=auth)

    @strawberry.mutation(description="Turn 2FA off (needs a current code or a recovery code)")
    async def disable_two_factor(self, info: Info, code: str) -> bool:
        principal = info.context.require_principal()
        await _auth_limit(info, f"user:{principal.user_id}")
        await two_factor.disable(info.context, code)
        return True

    @strawberry.mutation(
        description="Replace your recovery codes (needs a current code); the old ones stop working"
    )
    async def regenerate_recovery_codes(self, info: Info, code: str) -> list[str]:
        principal = info.context.require_principal()
        await _auth_limit(info, f"user:{principal.user_id}")
        return await two_factor.regenerate_recovery_codes(info.context, code)
