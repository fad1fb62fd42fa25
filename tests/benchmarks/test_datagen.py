"""The benchmark's data generator: deterministic, and nobody is ever double-booked (tiny scale)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from benchmarks.config import Scale
from benchmarks.database import copy
from benchmarks.datagen import check_invariants, generate

TINY = Scale(
    clinics=2,
    counselors_per_clinic=3,
    patients_per_clinic=20,
    days=14,
    days_ahead=7,
    slots_per_day=4,
)
ANCHOR = date(2026, 3, 4)  # a Wednesday: the calendar spans 10 weekdays around it


def test_same_inputs_give_the_same_rows() -> None:
    a, b = generate(TINY, ANCHOR, "hash"), generate(TINY, ANCHOR, "hash")
    assert (a.clinics, a.users, a.patients, a.sessions) == (
        b.clinics,
        b.users,
        b.patients,
        b.sessions,
    )
    other = generate(Scale(**{**TINY.__dict__, "seed": TINY.seed + 1}), ANCHOR, "hash")
    assert other.sessions != a.sessions


def test_counts_and_no_double_booking() -> None:
    data = generate(TINY, ANCHOR, "hash")
    check_invariants(data, TINY)
    assert len(data.sessions) == 2 * 3 * 10 * 4
    assert len(data.admins) == 2 and all(a.totp_secret for a in data.admins)
    statuses = {s[8] for s in data.sessions}
    assert {"completed", "scheduled"} <= statuses
    anchor_at = datetime(2026, 3, 4, tzinfo=UTC)
    assert {s[4] >= anchor_at for s in data.sessions} == {True, False}  # type: ignore[operator]  # past and upcoming


def test_invariant_check_catches_a_double_booking() -> None:
    data = generate(TINY, ANCHOR, "hash")
    clash = list(data.sessions[1])
    clash[1], clash[3], clash[4] = (
        object(),
        data.sessions[0][3],
        data.sessions[0][4],
    )  # same counselor, same time
    data.sessions.append(tuple(clash))
    data.sessions.pop(-2)  # keep the count right: only the clash is wrong
    with pytest.raises(AssertionError, match="double booking"):
        check_invariants(data, TINY)


@pytest.mark.postgres_only
def test_copy_loads_every_row_into_postgres(owner_url: str) -> None:
    data = generate(TINY, ANCHOR, "hash")
    assert asyncio.run(copy(owner_url, data))["counseling_sessions"] == len(data.sessions)

    async def check() -> tuple[int, int, int]:
        conn = await asyncpg.connect(owner_url.replace("+asyncpg", ""))
        try:
            sessions = await conn.fetchval("SELECT count(*) FROM counseling_sessions")
            patients = await conn.fetchval("SELECT count(*) FROM patients")
            overlaps = await conn.fetchval(
                "SELECT count(*) FROM counseling_sessions a"
                " JOIN counseling_sessions b ON a.id < b.id"
                " AND (a.counselor_id = b.counselor_id OR a.patient_id = b.patient_id)"
                " AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
            )
            return sessions, patients, overlaps
        finally:
            await conn.close()

    assert asyncio.run(check()) == (len(data.sessions), TINY.patients, 0)
