"""Access tokens (short-lived JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt

from gateway.auth.principal import Principal
from gateway.db.models import Role
from gateway.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "santana"


def issue_access_token(principal: Principal, secret: str, ttl_seconds: int) -> tuple[str, datetime]:
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
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_access_token(token: str, secret: str) -> Principal:
    """Verify signature, expiry and issuer; return the Principal the token names."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "role"]},
        )
        clinic = claims.get("clinic")
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            clinic_id=uuid.UUID(clinic) if clinic else None,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("Access token expired; refresh it.", reason="expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthenticated("Access token is invalid.", reason="invalid") from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the hash that is stored for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
