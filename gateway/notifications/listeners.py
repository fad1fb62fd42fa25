"""Which domain events send which notification (in the event's own transaction).

    SessionChanged booked       -> session_booked
    SessionChanged rescheduled  -> session_rescheduled
    SessionChanged cancelled    -> session_cancelled
    PaymentChanged succeeded    -> payment_receipt (once per payment)

Completed and missed sessions send nothing. Reminders are queued by the worker's
sweep (gateway/notifications/reminders.py), invitations and password resets by
their services.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from gateway.db.models import Clinic, CounselingSession, Patient
from gateway.events import EventContext, PaymentChanged, SessionChanged, on
from gateway.notifications.render import Notification
from gateway.notifications.service import format_money, format_time, notify

_SESSION_NOTIFICATIONS = {
    "booked": Notification.SESSION_BOOKED,
    "rescheduled": Notification.SESSION_RESCHEDULED,
    "cancelled": Notification.SESSION_CANCELLED,
}


async def session_facts(
    ectx: EventContext, clinic_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[Patient, CounselingSession, Clinic] | None:
    db = ectx.db
    session = await db.get(CounselingSession, (clinic_id, session_id))
    clinic = await db.get(Clinic, clinic_id)
    if session is None or clinic is None:
        return None
    patient = await db.get(Patient, (clinic_id, session.patient_id))
    if patient is None:
        return None
    return patient, session, clinic


def session_context(
    session: CounselingSession, clinic: Clinic, previous: datetime | None = None
) -> dict[str, Any]:
    """When, how long and how: nothing about why (no notes, no reasons)."""
    modality = getattr(session.modality, "value", session.modality)
    return {
        "starts_at": format_time(session.starts_at, clinic.timezone),
        "previous_starts_at": format_time(previous, clinic.timezone) if previous else None,
        "duration_minutes": session.duration_minutes,
        "modality": str(modality).replace("_", " "),
    }


@on(SessionChanged)
async def _session_changed(ectx: EventContext, event: SessionChanged) -> None:
    notification = _SESSION_NOTIFICATIONS.get(event.change)
    if notification is None:
        return
    facts = await session_facts(ectx, event.clinic_id, event.session_id)
    if facts is None:
        return
    patient, session, clinic = facts
    await notify(
        ectx,
        event.clinic_id,
        notification,
        to=patient.email,
        first_name=patient.first_name,
        context=session_context(session, clinic, event.previous_starts_at),
        user_id=patient.user_id,
        patient_id=patient.id,
        session_id=session.id,
    )


@on(PaymentChanged)
async def _payment_changed(ectx: EventContext, event: PaymentChanged) -> None:
    if event.status != "succeeded" or event.previous_status == "succeeded":
        return
    facts = await session_facts(ectx, event.clinic_id, event.session_id)
    if facts is None:
        return
    patient, session, clinic = facts
    await notify(
        ectx,
        event.clinic_id,
        Notification.PAYMENT_RECEIPT,
        to=patient.email,
        first_name=patient.first_name,
        context={
            **session_context(session, clinic),
            "amount": format_money(event.amount, event.currency),
            "reference": str(event.payment_id),
        },
        user_id=patient.user_id,
        patient_id=patient.id,
        session_id=session.id,
        # A provider that reports success twice still yields one receipt.
        dedupe_key=f"receipt:{event.payment_id}",
    )
