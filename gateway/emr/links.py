"""Look up which EMR record a patient is linked to (used by other EMR-bound features)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.emr.models import EmrPatientLink


async def emr_patient_id(
    db: AsyncSession, clinic_id: uuid.UUID, patient_id: uuid.UUID
) -> str | None:
    """The linked EMR Patient id, or None when the patient is not linked to the EMR."""
    return await db.scalar(
        select(EmrPatientLink.emr_patient_id).where(
            EmrPatientLink.clinic_id == clinic_id, EmrPatientLink.patient_id == patient_id
        )
    )


async def patient_link(
    db: AsyncSession, clinic_id: uuid.UUID, patient_id: uuid.UUID
) -> EmrPatientLink | None:
    """The whole link row (plugin, EMR id, last sync), or None when not linked."""
    return await db.scalar(
        select(EmrPatientLink).where(
            EmrPatientLink.clinic_id == clinic_id, EmrPatientLink.patient_id == patient_id
        )
    )
