"""Input checks shared by the services. Each failure names the field it is about."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import ValidationFailed

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{5,40}$")


def text(value: str | None, field: str, *, max_length: int, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ValidationFailed(f"`{field}` is required.", field=field)
        return None
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"`{field}` must not be empty.", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"`{field}` is longer than {max_length} characters.", field=field)
    return value or None


def required_text(value: str | None, field: str, *, max_length: int) -> str:
    checked = text(value, field, max_length=max_length)
    assert checked is not None
    return checked


def email(value: str | None, field: str = "email", *, required: bool = True) -> str | None:
    checked = text(value, field, max_length=320, required=required)
    if checked is None:
        return None
    checked = checked.lower()
    if not _EMAIL.match(checked):
        raise ValidationFailed(f"`{field}` is not an email address.", field=field)
    return checked


def phone(value: str | None, field: str = "phone") -> str | None:
    checked = text(value, field, max_length=40, required=False)
    if checked is not None and not _PHONE.match(checked):
        raise ValidationFailed(f"`{field}` is not a phone number.", field=field)
    return checked


def slug(value: str, field: str = "slug") -> str:
    value = value.strip().lower()
    if not _SLUG.match(value):
        raise ValidationFailed(
            f"`{field}` must be 1-64 lower-case letters, digits or hyphens.", field=field
        )
    return value


def currency(value: str, field: str = "currency") -> str:
    value = value.strip().upper()
    if not _CURRENCY.match(value):
        raise ValidationFailed(f"`{field}` must be a three-letter ISO 4217 code.", field=field)
    return value


def timezone(value: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"`{field}` is not an IANA time zone.", field=field) from exc
    return value
