"""Counseling sessions pushed to the clinic's EMR as FHIR Appointments, through the outbox.

A SessionChanged listener queues the push in the session's own transaction
(only for clinics whose EMR integration has `push_appointments` on, and only
for patients linked to an EMR record), so an EMR outage delays the push but
never loses it. Once delivered, the EMR's Appointment id is stored: a later
reschedule or cancellation updates that same Appointment.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.types import utcnow
from gateway.emr.links import emr_patient_id
from gateway.emr.models import EmrAppointment
from gateway.errors import GatewayError
from gateway.events import EventContext, SessionChanged, on
from gateway.integrations import AppointmentPush, Kind, PushedAppointment
from gateway.integrations.models import Integration, OutboxMessage, OutboxStatus
from gateway.integrations.outbox import enqueue, on_dead, on_delivered
from gateway.services import audit

log = logging.getLogger("santana.emr")

HOOK = "push_appointment"
DESCRIPTION = "Counseling session"  # what EMR users see; no clinical detail
# Session change -> FHIR Appointment.status. Completion and no-shows only update an
# Appointment that was pushed before; they never create one.
_STATUS = {
    "booked": "booked",
    "rescheduled": "booked",
    "cancelled": "cancelled",
    "completed": "fulfilled",
    "no_show": "noshow",
}
_CREATES = {"booked", "rescheduled"}


async def _emr_row(db: AsyncSession, clinic_id: uuid.UUID) -> Integration | None:
    return await db.scalar(
        select(Integration).where(
            Integration.clinic_id == clinic_id,
            Integration.kind == Kind.EMR.value,
            Integration.enabled.is_(True),
        )
    )


def _pushes_appointments(ectx: EventContext, row: Integration) -> bool:
    """The effective setting: the clinic's value, else the platform default."""
    if ectx.hub is None:
        return bool((row.config or {}).get("push_appointments", False))
    from gateway.integrations.dispatch import Target

    try:
        target = Target.from_row(ectx.hub, row)
        config = ectx.hub.store.build(target.plugin.declaration, target.config, target.secrets)
    except GatewayError as exc:
        # A broken configuration shows on the integration itself; the session still saves.
        log.warning("EMR appointment push skipped: %s", exc.message)
        return False
    return bool(getattr(config, "push_appointments", False))


async def _pushed(
    db: AsyncSession, clinic_id: uuid.UUID, plugin: str, session_id: uuid.UUID
) -> EmrAppointment | None:
    return await db.scalar(
        select(EmrAppointment).where(
            EmrAppointment.clinic_id == clinic_id,
            EmrAppointment.plugin == plugin,
            EmrAppointment.session_id == session_id,
        )
    )


async def _supersede(db: AsyncSession, clinic_id: uuid.UUID, outbox_id: uuid.UUID) -> bool | None:
    """Drop the session's earlier push if it still waits; None if there is none pending.

    Returns True when it was dropped (the new push replaces it), False when it is being
    delivered right now (the new push must wait for it), None when it is done.
    """
    dropped = await db.execute(
        delete(OutboxMessage).where(
            OutboxMessage.clinic_id == clinic_id,
            OutboxMessage.id == outbox_id,
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.lease_owner.is_(None),
        )
    )
    if dropped.rowcount:  # type: ignore[attr-defined]
        return True
    status = await db.scalar(
        select(OutboxMessage.status).where(
            OutboxMessage.clinic_id == clinic_id, OutboxMessage.id == outbox_id
        )
    )
    return False if status == OutboxStatus.PENDING else None


@on(SessionChanged)
async def queue_appointment_push(ectx: EventContext, event: SessionChanged) -> None:
    status = _STATUS.get(event.change)
    if status is None:
        return
    row = await _emr_row(ectx.db, event.clinic_id)
    if row is None or not _pushes_appointments(ectx, row):
        return
    patient_ref = await emr_patient_id(ectx.db, event.clinic_id, event.patient_id)
    if patient_ref is None:
        return  # not linked to an EMR record: nothing to attach the Appointment to
    pushed = await _pushed(ectx.db, event.clinic_id, row.plugin, event.session_id)
    if pushed is None:
        if event.change not in _CREATES:
            return
        pushed = EmrAppointment(
            clinic_id=event.clinic_id, session_id=event.session_id, plugin=row.plugin
        )
        ectx.db.add(pushed)
    in_flight = False
    if pushed.outbox_id is not None:
        in_flight = await _supersede(ectx.db, event.clinic_id, pushed.outbox_id) is False
    push = AppointmentPush(
        emr_patient_id=patient_ref,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        description=DESCRIPTION,
        reference=str(event.session_id),
        status=status,
        emr_appointment_id=pushed.emr_appointment_id,
    )
    message = enqueue(
        ectx.db,
        ectx.cipher,
        event.clinic_id,
        Kind.EMR,
        HOOK,
        {"appointment": push},
        actor_user_id=ectx.actor_user_id,
        request_id=ectx.request_id,
    )
    if in_flight:
        # Never two pushes of one session at once: this one waits out the other's lease.
        lease = 2 * ectx.settings.integration_timeout_seconds + 30  # the outbox's lease
        message.next_attempt_at = utcnow() + timedelta(seconds=lease)
    pushed.outbox_id = message.id


@on_delivered(HOOK)
async def remember_appointment(
    db: AsyncSession, message: OutboxMessage, args: dict[str, Any], result: Any
) -> None:
    push: AppointmentPush = args["appointment"]
    pushed = result if isinstance(result, PushedAppointment) else None
    if pushed is None:
        pushed = PushedAppointment.model_validate(result)
    row = await _emr_row(db, message.clinic_id)
    plugin = row.plugin if row is not None else (message.plugin or "unknown")
    session_id = uuid.UUID(push.reference)
    stored = await _pushed(db, message.clinic_id, plugin, session_id)
    if stored is None:  # queued before the EMR plugin changed, or by an older gateway
        stored = EmrAppointment(clinic_id=message.clinic_id, session_id=session_id, plugin=plugin)
        db.add(stored)
    stored.emr_appointment_id = pushed.emr_appointment_id
    stored.last_status = push.status
    audit.record(
        db,
        "emr.appointment_pushed",
        clinic_id=message.clinic_id,
        actor_user_id=message.actor_user_id,
        target_type="session",
        target_id=session_id,
        details={
            "plugin": plugin,
            "status": push.status,
            "emr_appointment_id": pushed.emr_appointment_id,
            "outbox_id": str(message.id),
        },
        request_id=message.request_id,
    )


@on_dead(HOOK)
async def appointment_push_failed(
    db: AsyncSession, message: OutboxMessage, args: dict[str, Any] | None, reason: str
) -> None:
    push: AppointmentPush | None = args["appointment"] if args else None
    audit.record(
        db,
        "emr.appointment_push_failed",
        clinic_id=message.clinic_id,
        actor_user_id=message.actor_user_id,
        target_type="session",
        target_id=uuid.UUID(push.reference) if push else None,
        outcome="failure",
        details={"status": push.status if push else None, "outbox_id": str(message.id)},
        request_id=message.request_id,
    )
