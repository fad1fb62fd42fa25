"""Book, reschedule, cancel and complete counseling sessions; write notes."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.services import sessions as session_service
from schema.context import Info
from schema.ids import from_global_id
from schema.transactions import Transactional
from schema.types import CounselingSession, Modality


@strawberry.input
class ScheduleSessionInput:
    patient_id: strawberry.ID
    starts_at: datetime = strawberry.field(description="With an offset, e.g. 2026-12-01T09:00:00Z")
    duration_minutes: int = 50
    modality: Modality = Modality.IN_PERSON  # type: ignore[valid-type]
    fee_amount: int = strawberry.field(
        default=0, description="In minor units of the clinic's currency"
    )
    counselor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for clinic admins; counselors book for themselves"
    )


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        extensions=[Transactional()], description="Book a session (no double-booking)"
    )
    async def schedule_session(self, info: Info, input: ScheduleSessionInput) -> CounselingSession:
        row = await session_service.schedule_session(
            info.context,
            patient_id=from_global_id(input.patient_id, "Patient", "patientId"),
            counselor_id=from_global_id(input.counselor_id, "User", "counselorId")
            if input.counselor_id
            else None,
            starts_at=input.starts_at,
            duration_minutes=input.duration_minutes,
            modality=input.modality,
            fee_amount=input.fee_amount,
        )
        return CounselingSession.from_model(row)

    @strawberry.mutation(extensions=[Transactional()], description="Move a scheduled session")
    async def reschedule_session(
        self,
        info: Info,
        id: strawberry.ID,
        starts_at: datetime,
        duration_minutes: int | None = None,
    ) -> CounselingSession:
        row = await session_service.reschedule_session(
            info.context,
            from_global_id(id, "CounselingSession"),
            starts_at=starts_at,
            duration_minutes=duration_minutes,
        )
        return CounselingSession.from_model(row)

    @strawberry.mutation(extensions=[Transactional()])
    async def cancel_session(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> CounselingSession:
        row = await session_service.cancel_session(
            info.context, from_global_id(id, "CounselingSession"), reason
        )
        return CounselingSession.from_model(row)

    @strawberry.mutation(
        extensions=[Transactional()], description="Mark a past session held (or a no-show)"
    )
    async def complete_session(
        self, info: Info, id: strawberry.ID, no_show: bool = False, notes: str | None = None
    ) -> CounselingSession:
        row = await session_service.complete_session(
            info.context, from_global_id(id, "CounselingSession"), no_show=no_show, notes=notes
        )
        return CounselingSession.from_model(row)

    @strawberry.mutation(
        extensions=[Transactional()], description="Replace the session's notes (its counselor only)"
    )
    async def update_session_notes(
        self, info: Info, id: strawberry.ID, notes: str
    ) -> CounselingSession:
        row = await session_service.update_notes(
            info.context, from_global_id(id, "CounselingSession"), notes
        )
        return CounselingSession.from_model(row)
