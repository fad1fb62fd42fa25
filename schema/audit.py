"""The audit log in GraphQL: `auditEvents`, for clinic admins (own clinic) and platform admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from gateway.db import models
from gateway.services import audit as audit_service
from gateway.services.audit import AuditFilter
from schema.context import Info
from schema.ids import from_global_id, to_global_id
from schema.types import Connection, User, connection


@strawberry.type(description="One recorded action: who did what to which record, and the outcome")
class AuditEvent:
    id: strawberry.ID
    action: str = strawberry.field(description="e.g. auth.login, patient.read, session.notes_read")
    outcome: str = strawberry.field(description="success, failure or denied")
    created_at: datetime
    clinic_id: strawberry.ID | None
    actor_id: strawberry.ID | None
    target_type: str | None
    target_id: str | None
    patient_id: strawberry.ID | None
    details: JSON = strawberry.field(description="Identifiers and field names only; never PHI")
    request_id: str | None
    ip: str | None
    seq: int | None = strawberry.field(description="Position in the clinic's hash chain")
    row_hash: str | None
    actor_row_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: models.AuditEvent) -> AuditEvent:
        return cls(
            id=to_global_id("AuditEvent", m.id),
            action=m.action,
            outcome=m.outcome,
            created_at=m.created_at,
            clinic_id=to_global_id("Clinic", m.clinic_id) if m.clinic_id else None,
            actor_id=to_global_id("User", m.actor_user_id) if m.actor_user_id else None,
            target_type=m.target_type,
            target_id=m.target_id,
            patient_id=to_global_id("Patient", m.patient_id) if m.patient_id else None,
            details=m.details,  # type: ignore[arg-type]
            request_id=m.request_id,
            ip=m.ip,
            seq=m.seq,
            row_hash=m.row_hash,
            actor_row_id=m.actor_user_id,
        )

    @strawberry.field(description="The acting account, when you may see it")
    async def actor(self, info: Info) -> User | None:
        if self.actor_row_id is None:
            return None
        row = await info.context.loaders.user.load(self.actor_row_id)
        return User.from_model(row) if row else None


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit log, newest first (clinic admins: own clinic; platform admins: any)"
    )
    async def audit_events(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        clinic_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Platform admins: one clinic only"),
        ] = None,
        actor_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        action: Annotated[
            str | None, strawberry.argument(description="Exact action, e.g. patient.read")
        ] = None,
        action_prefix: Annotated[
            str | None, strawberry.argument(description="e.g. `auth.`")
        ] = None,
        from_: Annotated[
            datetime | None, strawberry.argument(name="from", description="At or after")
        ] = None,
        to: Annotated[datetime | None, strawberry.argument(description="Before")] = None,
    ) -> Connection[AuditEvent]:
        flt = AuditFilter(
            clinic_id=from_global_id(clinic_id, "Clinic", "clinicId") if clinic_id else None,
            actor_user_id=from_global_id(actor_id, "User", "actorId") if actor_id else None,
            patient_id=from_global_id(patient_id, "Patient", "patientId") if patient_id else None,
            action=action,
            action_prefix=action_prefix,
            since=from_,
            until=to,
        )
        page = await audit_service.list_events(info.context, flt, first=first, after=after)
        return connection(page, AuditEvent)  # type: ignore[arg-type]
