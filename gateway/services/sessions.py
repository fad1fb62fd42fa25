"""Counseling sessions: list, read, schedule, reschedule, cancel, complete, notes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, select, tuple_

from gateway.auth.permissions import (
    Action,
    may_manage_session,
    may_read_notes,
    require,
    session_filter,
)
from gateway.db.models import (
    Clinic,
    CounselingSession,
    Modality,
    Patient,
    Role,
    SessionStatus,
    User,
)
from gateway.db.types import utcnow
from gateway.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.events import EventContext, SessionChanged, emit
from gateway.services import audit
from gateway.services.context import ServiceContext
from gateway.services.pagination import Page, check_page_size, decode_cursor, encode_cursor

MIN_DURATION, MAX_DURATION = 15, 480
MAX_NOTES = 20_000


@dataclass
class SessionFilter:
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    counselor_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    statuses: list[SessionStatus] | None = None


async def list_sessions(
    ctx: ServiceContext,
    flt: SessionFilter,
    *,
    first: int,
    after: str | None,
    newest_first: bool = False,
) -> Page[CounselingSession]:
    principal = ctx.require_principal()
    require(principal, Action.SESSION_READ)
    check_page_size(first, ctx.settings.max_page_size)
    # Offsets first: comparing a naive with an aware datetime would raise TypeError.
    starts_from = _aware(flt.starts_from, "from") if flt.starts_from else None
    starts_before = _aware(flt.starts_before, "to") if flt.starts_before else None
    if starts_from and starts_before and starts_from >= starts_before:
        raise ValidationFailed("`from` must be before `to`.", field="from")
    S = CounselingSession
    query = select(S).where(session_filter(principal))
    if starts_from:
        query = query.where(S.starts_at >= starts_from)
    if starts_before:
        query = query.where(S.starts_at < starts_before)
    if flt.counselor_id:
        query = query.where(S.counselor_id == flt.counselor_id)
    if flt.patient_id:
        query = query.where(S.patient_id == flt.patient_id)
    if flt.statuses:
        query = query.where(S.status.in_(flt.statuses))
    key = tuple_(S.starts_at, S.id)
    if after:
        position = tuple_(*_decode_session_cursor(after))
        query = query.where(key < position if newest_first else key > position)
    order = (S.starts_at.desc(), S.id.desc()) if newest_first else (S.starts_at, S.id)
    rows = list(await ctx.db.scalars(query.order_by(*order).limit(first + 1)))
    items = rows[:first]
    return Page(items, len(rows) > first, [encode_cursor((s.starts_at, s.id)) for s in items])


def _decode_session_cursor(after: str) -> list[object]:
    # A forged cursor of the right length but wrong types must not reach the SQL.
    key = decode_cursor(after, 2)
    starts_at, row_id = key
    if not (isinstance(starts_at, datetime) and starts_at.tzinfo and isinstance(row_id, uuid.UUID)):
        raise ValidationFailed("The `after` cursor is not valid for this list.", field="after")
    return key


async def get_session(ctx: ServiceContext, session_id: uuid.UUID) -> CounselingSession:
    principal = ctx.require_principal()
    require(principal, Action.SESSION_READ)
    row = await ctx.db.scalar(
        select(CounselingSession).where(
            CounselingSession.id == session_id, session_filter(principal)
        )
    )
    if row is None:
        raise NotFound("Session not found.")
    return row


def read_notes(ctx: ServiceContext, session: CounselingSession) -> str | None:
    if not may_read_notes(ctx.require_principal(), session):
        raise Forbidden("Only the counselor holding this session can read its notes.")
    if not session.notes_encrypted:
        return None
    audit.record_read(
        ctx,
        "session.notes_read",
        clinic_id=session.clinic_id,
        target_type="session",
        target_id=session.id,
        patient_id=session.patient_id,
    )
    return ctx.cipher.decrypt(session.notes_encrypted)


async def schedule_session(
    ctx: ServiceContext,
    *,
    patient_id: uuid.UUID,
    counselor_id: uuid.UUID | None,
    starts_at: datetime,
    duration_minutes: int,
    modality: Modality,
    fee_amount: int,
) -> CounselingSession:
    principal = ctx.require_principal()
    require(principal, Action.SESSION_WRITE)
    clinic_id = principal.clinic_id
    assert clinic_id is not None
    if principal.role is Role.COUNSELOR:
        if counselor_id not in (None, principal.user_id):
            raise Forbidden("Counselors book sessions for themselves only.", field="counselorId")
        counselor_id = principal.user_id
    if counselor_id is None:
        raise ValidationFailed("`counselorId` is required.", field="counselorId")
    if fee_amount < 0:
        raise ValidationFailed("`feeAmount` cannot be negative.", field="feeAmount")
    start, end = _slot(starts_at, duration_minutes)
    patient = await ctx.db.scalar(
        select(Patient).where(Patient.clinic_id == clinic_id, Patient.id == patient_id)
    )
    if patient is None:
        raise NotFound("Patient not found.", field="patientId")
    if patient.archived:
        raise ValidationFailed("The patient is archived; unarchive them first.", field="patientId")
    await _lock_counselor(ctx, clinic_id, counselor_id)
    await _check_free(ctx, clinic_id, counselor_id, patient_id, start, end, exclude=None)
    currency = await ctx.db.scalar(select(Clinic.currency).where(Clinic.id == clinic_id))
    row = CounselingSession(
        clinic_id=clinic_id,
        patient_id=patient_id,
        counselor_id=counselor_id,
        starts_at=start,
        ends_at=end,
        duration_minutes=duration_minutes,
        modality=modality,
        status=SessionStatus.SCHEDULED,
        fee_amount=fee_amount,
        currency=currency or "USD",
    )
    ctx.db.add(row)
    await ctx.db.flush()
    _audit(ctx, "session.scheduled", row, {"startsAt": start.isoformat()})
    await _changed(ctx, row, "booked")
    return row


async def reschedule_session(
    ctx: ServiceContext, session_id: uuid.UUID, *, starts_at: datetime, duration_minutes: int | None
) -> CounselingSession:
    row = await _managed(ctx, session_id)
    _require_status(row, SessionStatus.SCHEDULED, "rescheduled")
    start, end = _slot(starts_at, duration_minutes or row.duration_minutes)
    await _lock_counselor(ctx, row.clinic_id, row.counselor_id)
    await _check_free(
        ctx, row.clinic_id, row.counselor_id, row.patient_id, start, end, exclude=row.id
    )
    previous_start = row.starts_at
    before = {"from": row.starts_at.isoformat(), "fromDuration": row.duration_minutes}
    row.starts_at, row.ends_at, row.duration_minutes = (
        start,
        end,
        int((end - start).total_seconds() // 60),
    )
    row.updated_at = utcnow()
    _audit(
        ctx,
        "session.rescheduled",
        row,
        {**before, "to": start.isoformat(), "toDuration": row.duration_minutes},
    )
    await _changed(ctx, row, "rescheduled", previous_starts_at=previous_start)
    return row


async def cancel_session(
    ctx: ServiceContext, session_id: uuid.UUID, reason: str | None
) -> CounselingSession:
    row = await _managed(ctx, session_id)
    _require_status(row, SessionStatus.SCHEDULED, "cancelled")
    if reason is not None and len(reason) > 500:
        raise ValidationFailed("`reason` is longer than 500 characters.", field="reason")
    row.status = SessionStatus.CANCELLED
    row.cancel_reason = reason.strip() if reason else None
    row.updated_at = utcnow()
    _audit(ctx, "session.cancelled", row, {})
    await _changed(ctx, row, "cancelled")
    return row


async def complete_session(
    ctx: ServiceContext, session_id: uuid.UUID, *, no_show: bool = False, notes: str | None = None
) -> CounselingSession:
    row = await _managed(ctx, session_id)
    _require_status(row, SessionStatus.SCHEDULED, "completed")
    if row.starts_at > utcnow():
        raise ValidationFailed("A session cannot be completed before it starts.", field="id")
    row.status = SessionStatus.NO_SHOW if no_show else SessionStatus.COMPLETED
    if notes is not None:
        _write_notes(ctx, row, notes)
    row.updated_at = utcnow()
    _audit(ctx, "session.no_show" if no_show else "session.completed", row, {})
    await _changed(ctx, row, "no_show" if no_show else "completed")
    return row


async def update_notes(ctx: ServiceContext, session_id: uuid.UUID, notes: str) -> CounselingSession:
    require(ctx.require_principal(), Action.SESSION_WRITE)
    row = await get_session(ctx, session_id)
    _write_notes(ctx, row, notes)
    row.updated_at = utcnow()
    _audit(ctx, "session.notes_updated", row, {})
    return row


def _write_notes(ctx: ServiceContext, row: CounselingSession, notes: str) -> None:
    if not may_read_notes(ctx.require_principal(), row):
        raise Forbidden(
            "Only the counselor holding this session can write its notes.", field="notes"
        )
    if len(notes) > MAX_NOTES:
        raise ValidationFailed(f"`notes` is longer than {MAX_NOTES} characters.", field="notes")
    row.notes_encrypted = ctx.cipher.encrypt(notes) if notes.strip() else None


async def _managed(ctx: ServiceContext, session_id: uuid.UUID) -> CounselingSession:
    principal = ctx.require_principal()
    require(principal, Action.SESSION_WRITE)
    row = await get_session(ctx, session_id)
    if not may_manage_session(principal, row):
        raise Forbidden("Only the session's counselor or a clinic admin can change it.")
    return row


def _require_status(row: CounselingSession, status: SessionStatus, verb: str) -> None:
    if row.status is not status:
        raise Conflict(f"A {row.status.value} session cannot be {verb}.", status=row.status.value)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise ValidationFailed(
            f"`{field}` needs a time zone offset (e.g. 2026-01-05T09:00:00Z).", field=field
        )
    return value


def _slot(starts_at: datetime, duration_minutes: int) -> tuple[datetime, datetime]:
    # Stored and returned in UTC, so the mutation's answer matches every later read.
    start = _aware(starts_at, "startsAt").astimezone(UTC)
    if not MIN_DURATION <= duration_minutes <= MAX_DURATION:
        raise ValidationFailed(
            f"`durationMinutes` must be between {MIN_DURATION} and {MAX_DURATION}.",
            field="durationMinutes",
        )
    if start <= utcnow():
        raise ValidationFailed("Sessions cannot be booked in the past.", field="startsAt")
    return start, start + timedelta(minutes=duration_minutes)


async def _lock_counselor(
    ctx: ServiceContext, clinic_id: uuid.UUID, counselor_id: uuid.UUID
) -> None:
    """Check the counselor and lock their row: concurrent bookings for one counselor
    queue here on PostgreSQL, so the overlap check below cannot race."""
    counselor = await ctx.db.scalar(
        select(User)
        .where(User.clinic_id == clinic_id, User.id == counselor_id, User.role == Role.COUNSELOR)
        .with_for_update()
    )
    if counselor is None or not counselor.is_active:
        raise NotFound("Counselor not found.", field="counselorId")


async def _check_free(
    ctx: ServiceContext,
    clinic_id: uuid.UUID,
    counselor_id: uuid.UUID,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None,
) -> None:
    S = CounselingSession
    overlapping = and_(
        S.clinic_id == clinic_id,
        S.status == SessionStatus.SCHEDULED,
        S.starts_at < end,
        S.ends_at > start,
    )
    if exclude is not None:
        overlapping = overlapping & (S.id != exclude)
    clash = await ctx.db.execute(
        select(S.counselor_id, S.patient_id)
        .where(overlapping, (S.counselor_id == counselor_id) | (S.patient_id == patient_id))
        .limit(1)
    )
    hit = clash.first()
    if hit is not None:
        who = "counselor" if hit.counselor_id == counselor_id else "patient"
        raise Conflict(
            f"The {who} already has a session at that time.", field="startsAt", clash=who
        )


def _audit(
    ctx: ServiceContext, action: str, row: CounselingSession, details: dict[str, object]
) -> None:
    principal = ctx.require_principal()
    audit.record(
        ctx.db,
        action,
        clinic_id=row.clinic_id,
        actor_user_id=principal.user_id,
        target_type="session",
        target_id=row.id,
        details=details,
        request_id=ctx.request_id,
        ip=ctx.ip,
        patient_id=row.patient_id,
    )


async def _changed(
    ctx: ServiceContext,
    row: CounselingSession,
    change: str,
    *,
    previous_starts_at: datetime | None = None,
) -> None:
    """Tell notifications, the EMR push and live subscribers, inside this transaction."""
    await emit(
        EventContext.from_service(ctx),
        SessionChanged(
            clinic_id=row.clinic_id,
            occurred_at=utcnow(),
            session_id=row.id,
            patient_id=row.patient_id,
            counselor_id=row.counselor_id,
            change=change,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            previous_starts_at=previous_starts_at,
        ),
    )
