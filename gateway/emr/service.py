"""EMR features for staff: search the clinic's EMR, import or link a patient, re-sync one.

Every read of EMR data and every change it causes is in the audit log (the
dispatch layer also audits each outbound call). Criteria and names never enter
audit details: only which fields were searched and how many records matched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.auth.permissions import Action, require
from gateway.db.models import Patient
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.emr.links import patient_link
from gateway.emr.models import EmrPatientLink
from gateway.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.integrations import EmrPatient, Kind, NotConfigured, PatientQuery
from gateway.integrations.dispatch import dispatch, require_hub
from gateway.services import audit, patients, validation
from gateway.services.context import ServiceContext

PLACEHOLDER_GIVEN = "Unknown"  # an EMR record without a given name still imports


@dataclass(frozen=True)
class EmrSearchHit:
    record: EmrPatient
    linked_patient_id: uuid.UUID | None  # ours, when the record was imported before


def _clinic(ctx: ServiceContext, action: Action) -> uuid.UUID:
    principal = ctx.require_principal()
    require(principal, action)
    if principal.clinic_id is None:  # platform admins read no clinical data
        raise Forbidden("You are not allowed to do that.")
    return principal.clinic_id


def _audit(
    ctx: ServiceContext,
    action: str,
    clinic_id: uuid.UUID,
    *,
    patient_id: uuid.UUID | None = None,
    details: dict[str, object] | None = None,
) -> None:
    audit.record(
        ctx.db,
        action,
        clinic_id=clinic_id,
        actor_user_id=ctx.require_principal().user_id,
        target_type="patient" if patient_id else "emr",
        target_id=patient_id,
        details=details,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )


async def _emr_plugin(ctx: ServiceContext, clinic_id: uuid.UUID) -> str:
    row = await require_hub(ctx).enabled_row(ctx.db, clinic_id, Kind.EMR.value)
    if row is None:
        raise NotConfigured("No EMR integration is enabled for this clinic.", kind="emr")
    return row.plugin


async def search(
    ctx: ServiceContext,
    *,
    family: str | None = None,
    given: str | None = None,
    birth_date: date | None = None,
    identifier: str | None = None,
    limit: int = 20,
) -> list[EmrSearchHit]:
    clinic_id = _clinic(ctx, Action.EMR_SEARCH)
    criteria = {
        "family": validation.text(family, "family", max_length=100, required=False),
        "given": validation.text(given, "given", max_length=100, required=False),
        "identifier": validation.text(identifier, "identifier", max_length=128, required=False),
    }
    if not any(criteria.values()) and birth_date is None:
        raise ValidationFailed("Search by name, birth date or identifier.", field="family")
    if not 1 <= limit <= 100:
        raise ValidationFailed("`limit` must be between 1 and 100.", field="limit")
    query = PatientQuery(**criteria, birth_date=birth_date, limit=limit)
    plugin = await _emr_plugin(ctx, clinic_id)
    searched = sorted(k for k, v in query.model_dump().items() if v and k != "limit")
    found: list[EmrPatient] = []
    outcome = "failure"
    try:
        found = await dispatch(ctx, clinic_id, Kind.EMR, "search_patients", query=query)
        outcome = "success"
    finally:
        # Its own transaction: a search is a read, and a failed one is audited too.
        async with ctx.database.transaction(TenantScope.clinic(clinic_id)) as db:
            audit.record(
                db,
                "emr.patients_searched",
                clinic_id=clinic_id,
                actor_user_id=ctx.require_principal().user_id,
                target_type="emr",
                target_id=plugin,
                outcome=outcome,
                details={"plugin": plugin, "by": searched, "records": len(found)},
                request_id=ctx.request_id,
                ip=ctx.ip,
            )
    links = {
        row.emr_patient_id: row.patient_id
        for row in await ctx.db.scalars(
            select(EmrPatientLink).where(
                EmrPatientLink.clinic_id == clinic_id,
                EmrPatientLink.plugin == plugin,
                EmrPatientLink.emr_patient_id.in_([p.emr_id for p in found]),
            )
        )
    }
    return [EmrSearchHit(p, links.get(p.emr_id)) for p in found]


async def _read_record(ctx: ServiceContext, clinic_id: uuid.UUID, emr_id: str) -> EmrPatient:
    record: EmrPatient | None = await dispatch(
        ctx, clinic_id, Kind.EMR, "get_patient", emr_id=emr_id
    )
    if record is None:
        raise NotFound("The EMR has no patient with that id.")
    return record


def _demographics(record: EmrPatient) -> patients.PatientFields:
    # Values the gateway cannot store (e.g. an unusual phone format) are left out, not refused.
    phone = record.phone
    try:
        validation.phone(phone)
    except ValidationFailed:
        phone = None
    email = record.email
    try:
        validation.email(email, required=False)
    except ValidationFailed:
        email = None
    return patients.PatientFields(
        first_name=(record.given or PLACEHOLDER_GIVEN)[:100],
        last_name=(record.family or PLACEHOLDER_GIVEN)[:100],
        date_of_birth=record.birth_date,
        email=email,
        phone=phone,
    )


async def import_patient(
    ctx: ServiceContext, emr_id: str, patient_id: uuid.UUID | None = None
) -> tuple[Patient, bool]:
    """Create a patient from the EMR record, or link `patient_id` to it.

    Importing a record that is already linked returns that patient (created = False).
    """
    clinic_id = _clinic(ctx, Action.EMR_IMPORT)
    require(ctx.require_principal(), Action.PATIENT_WRITE)
    emr_id = validation.required_text(emr_id, "emrId", max_length=128)
    if patient_id is not None:
        await patients.get_patient(ctx, patient_id)  # NotFound for rows the caller cannot see
    plugin = await _emr_plugin(ctx, clinic_id)
    existing = await ctx.db.scalar(
        select(EmrPatientLink).where(
            EmrPatientLink.clinic_id == clinic_id,
            EmrPatientLink.plugin == plugin,
            EmrPatientLink.emr_patient_id == emr_id,
        )
    )
    if existing is not None:
        if patient_id is not None and patient_id != existing.patient_id:
            raise Conflict("That EMR record is linked to another patient.", field="emrId")
        return await patients.get_patient(ctx, existing.patient_id), False
    record = await _read_record(ctx, clinic_id, emr_id)
    fields = _demographics(record)
    fields.emr_system, fields.emr_id = plugin, record.emr_id
    if patient_id is None:
        patient = await patients.create_patient(ctx, fields)
        created = True
    else:
        if await patient_link(ctx.db, clinic_id, patient_id) is not None:
            raise Conflict("This patient is already linked to an EMR record.", field="patientId")
        # Linking keeps our demographics; only the EMR reference is written.
        link_only = patients.PatientFields(emr_system=plugin, emr_id=record.emr_id)
        patient = await patients.update_patient(ctx, patient_id, link_only)
        created = False
    ctx.db.add(
        EmrPatientLink(
            clinic_id=clinic_id,
            patient_id=patient.id,
            plugin=plugin,
            emr_patient_id=record.emr_id,
            linked_by=ctx.require_principal().user_id,
            last_synced_at=utcnow() if created else None,
        )
    )
    try:
        await ctx.db.flush()
    except IntegrityError as exc:  # a concurrent import of the same record won
        raise Conflict("That EMR record was just imported.", field="emrId") from exc
    _audit(
        ctx,
        "emr.patient_imported" if created else "emr.patient_linked",
        clinic_id,
        patient_id=patient.id,
        details={"plugin": plugin, "emr_patient_id": record.emr_id},
    )
    return patient, created


async def sync_patient(ctx: ServiceContext, patient_id: uuid.UUID) -> Patient:
    """Refresh a linked patient's demographics from the EMR."""
    clinic_id = _clinic(ctx, Action.EMR_IMPORT)
    require(ctx.require_principal(), Action.PATIENT_WRITE)
    await patients.get_patient(ctx, patient_id)  # NotFound for rows the caller cannot see
    link = await patient_link(ctx.db, clinic_id, patient_id)
    if link is None:
        raise ValidationFailed("This patient is not linked to an EMR record.", field="patientId")
    plugin = await _emr_plugin(ctx, clinic_id)
    if plugin != link.plugin:
        raise Conflict("The patient is linked to a different EMR than the enabled one.")
    record = await _read_record(ctx, clinic_id, link.emr_patient_id)
    patient = await patients.update_patient(ctx, patient_id, _demographics(record))
    link.last_synced_at = utcnow()
    _audit(
        ctx,
        "emr.patient_synced",
        clinic_id,
        patient_id=patient.id,
        details={"plugin": plugin, "emr_patient_id": link.emr_patient_id},
    )
    return patient
