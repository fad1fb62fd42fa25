"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import jwt

from gateway.auth.principal import Principal
from gateway.db.models import Role
from gateway.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "santana"
# An access token with this scope only lets its holder enroll in 2FA (admins in production).
ENROLL_SCOPE = "2fa_enroll"
CHALLENGE_AUDIENCE = "santana-2fa-challenge"


class TwoFactorEnrollmentRequired(Unauthenticated):
    """The token is valid but only for setting up two-factor authentication."""

    code = "TWO_FACTOR_ENROLLMENT_REQUIRED"

    def __init__(self, principal: Principal) -> None:
        super().__init__(
            "Set up two-factor authentication before using the API.", reason="two_factor_enrollment"
        )
        self.principal = principal


def _decode(token: str, secrets: str | Sequence[str], **kwargs: object) -> dict[str, object]:
    """Verify with the current secret, then the previous one while its grace period lasts."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    for i, key in enumerate(keys):
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, **kwargs)  # type: ignore[arg-type]
        except jwt.InvalidSignatureError:
            if i == len(keys) - 1:
                raise
    raise jwt.InvalidTokenError("no verification key")


def issue_access_token(
    principal: Principal, secret: str, ttl_seconds: int, scope: str | None = None
) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "iss": ISSUER,
        "sub": str(principal.user_id),
        "role": principal.role.value,
        "clinic": str(principal.clinic_id) if principal.clinic_id else None,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_access_token(token: str, secret: str | Sequence[str]) -> Principal:
    """Verify signature, expiry and issuer; return the Principal the token names.

    `secret` may list several secrets (current first, then the one being rotated out).
    """
    try:
        claims = _decode(token, secret, options={"require": ["exp", "iat", "sub", "role"]})
        clinic = claims.get("clinic")
        principal = Principal(
            user_id=uuid.UUID(str(claims["sub"])),
            role=Role(claims["role"]),
            clinic_id=uuid.UUID(str(clinic)) if clinic else None,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("Access token expired; refresh it.", reason="expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthenticated("Access token is invalid.", reason="invalid") from exc
    if claims.get("scope") == ENROLL_SCOPE:
        raise TwoFactorEnrollmentRequired(principal)
    if claims.get("scope") is not None:
        raise Unauthenticated("Access token is invalid.", reason="invalid")
    return principal


def issue_challenge_token(user_id: uuid.UUID, secret: str, ttl_seconds: int = 300) -> str:
    """Proof that the password was right, exchanged with a TOTP code for real tokens."""
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": CHALLENGE_AUDIENCE,
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_challenge_token(token: str, secret: str | Sequence[str]) -> uuid.UUID:
    try:
        claims = _decode(
            token, secret, audience=CHALLENGE_AUDIENCE, options={"require": ["exp", "sub", "aud"]}
        )
        return uuid.UUID(str(claims["sub"]))
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated(
            "The login challenge expired; log in again.", reason="expired"
        ) from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthenticated(
            "The login challenge is invalid; log in again.", reason="invalid"
        ) from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the hash that is stored for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
