"""Opaque global ids: base64 of "Type:uuid".

Row ids are random UUIDs, so an id reveals nothing and cannot be guessed; every
lookup is still fenced to the caller's clinic.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry

from gateway.errors import ValidationFailed


def to_global_id(type_name: str, row_id: uuid.UUID) -> strawberry.ID:
    raw = f"{type_name}:{row_id}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).decode().rstrip("="))


def parse_global_id(value: str) -> tuple[str, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode()).decode()
        type_name, row_id = raw.split(":", 1)
        return type_name, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("That is not a valid id.", id=value) from exc


def from_global_id(value: str, expected: str, field: str = "id") -> uuid.UUID:
    type_name, row_id = parse_global_id(value)
    if type_name != expected:
        raise ValidationFailed(f"`{field}` must be the id of a {expected}.", field=field)
    return row_id
