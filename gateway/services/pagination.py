"""Keyset (cursor) pagination: stable under inserts, one indexed range scan per page."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from gateway.errors import ValidationFailed

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    cursors: list[str]

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return {"u": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and "u" in value:
        return UUID(value["u"])
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    return value


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([_plain(v) for v in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError
        return [_typed(v) for v in values]
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            "The `after` cursor is not valid for this list.", field="after"
        ) from exc


def check_page_size(first: int, maximum: int) -> int:
    if first < 1 or first > maximum:
        raise ValidationFailed(f"`first` must be between 1 and {maximum}.", field="first")
    return first
