"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import ValidationFailed

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 10

# Checked against when the email is unknown, so a miss costs as much as a hit
# and response time does not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash("santana-timing-equaliser")


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"Password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if password.strip() != password or not password.strip():
        raise ValidationFailed("Password must not start or end with spaces.", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
