"""Domain events to and from JSON, so they can cross processes through Redis.

Events carry ids, times and short facts only (never PHI), so the wire form is the
dataclass fields plus the class name; unknown classes are dropped, not guessed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from datetime import datetime
from functools import cache
from typing import Any

import orjson

from gateway.events import DomainEvent


def encode(event: DomainEvent) -> bytes:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    # default=str: asyncpg hands back its own UUID class, which orjson does not know.
    return orjson.dumps({"type": type(event).__name__, "fields": fields}, default=str)


def decode(payload: bytes | str) -> DomainEvent | None:
    """The event `payload` describes, or None for a class this process does not know."""
    message = orjson.loads(payload)
    event_class = _event_classes().get(message.get("type"))
    if event_class is None:
        _event_classes.cache_clear()  # a module imported since may define it
        event_class = _event_classes().get(message.get("type"))
    if event_class is None:
        return None
    hints = typing.get_type_hints(event_class)
    values = {name: _convert(hints.get(name), value) for name, value in message["fields"].items()}
    return event_class(**values)


@cache
def _event_classes() -> dict[str, type[DomainEvent]]:
    found: dict[str, type[DomainEvent]] = {}
    pending = [DomainEvent]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _convert(hint: Any, value: Any) -> Any:
    if value is None or hint is None:
        return value
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if uuid.UUID in options:
        return uuid.UUID(value)
    if datetime in options:
        return datetime.fromisoformat(value)
    return value
