"""Events survive the trip through Redis unchanged (ids, times, optional fields)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from gateway.events import SessionChanged
from gateway.realtime.codec import decode, encode


def test_an_event_decodes_to_an_equal_event() -> None:
    now = datetime.now(UTC)
    event = SessionChanged(
        clinic_id=uuid.uuid4(), occurred_at=now, session_id=uuid.uuid4(),
        patient_id=uuid.uuid4(), counselor_id=uuid.uuid4(), change="rescheduled",
        starts_at=now, ends_at=now, previous_starts_at=None,
    )  # fmt: skip
    assert decode(encode(event)) == event


def test_an_unknown_event_class_is_dropped_not_guessed() -> None:
    assert decode(orjson.dumps({"type": "NoSuchEvent", "fields": {}})) is None
