"""Patients: list with search and cursor pagination, read, create, update, archive."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError

from gateway.auth.permissions import Action, patient_filter, require
from gateway.db.models import Patient, Role, User
from gateway.db.types import utcnow
from gateway.errors import Conflict, NotFound, ValidationFailed
from gateway.services import audit, validation
from gateway.services.context import ServiceContext
from gateway.services.pagination import Page, check_page_size, decode_cursor, encode_cursor

UNSET = object()


@dataclass
class PatientFields:
    """Fields a create or update may set; UNSET leaves a field as it is."""

    first_name: object = UNSET
    last_name: object = UNSET
    date_of_birth: object = UNSET
    email: object = UNSET
    phone: object = UNSET
    emr_system: object = UNSET
    emr_id: object = UNSET
    user_id: object = UNSET


def _sort_key(p: Patient) -> tuple[str, str, uuid.UUID]:
    return (p.last_name, p.first_name, p.id)


def _decode_patient_cursor(after: str) -> list[object]:
    # A forged cursor of the right length but wrong types must not reach the SQL.
    key = decode_cursor(after, 3)
    if not (isinstance(key[0], str) and isinstance(key[1], str) and isinstance(key[2], uuid.UUID)):
        raise ValidationFailed("The `after` cursor is not valid for this list.", field="after")
    return key


async def list_patients(
    ctx: ServiceContext,
    *,
    first: int,
    after: str | None = None,
    search: str | None = None,
    archived: bool | None = False,
    plain_rows: bool = False,
) -> Page[Patient]:
    """A page of patients. `plain_rows`: read-only rows with the same attributes instead of
    ORM entities (no identity map or instance state; for compiled reads)."""
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_READ)
    check_page_size(first, ctx.settings.max_page_size)
    entity: Any = Patient.__table__.c if plain_rows else (Patient,)
    query = select(*entity).where(patient_filter(principal))
    if archived is not None:
        query = query.where(Patient.archived.is_(archived))
    if search:
        term = validation.required_text(search, "search", max_length=100).lower()
        # Wildcards typed by the user match themselves (an email may hold "_").
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        full = func.lower(Patient.first_name + " " + Patient.last_name)
        query = query.where(
            or_(full.like(like, escape="\\"), func.lower(Patient.email).like(like, escape="\\"))
        )
    order = (Patient.last_name, Patient.first_name, Patient.id)
    if after:
        query = query.where(tuple_(*order) > tuple_(*_decode_patient_cursor(after)))
    query = query.order_by(*order).limit(first + 1)
    rows: list[Any]  # Patient entities, or rows with the same attributes
    if plain_rows:
        rows = list((await (await ctx.db.connection()).execute(query)).all())
    else:
        rows = list(await ctx.db.scalars(query))
    items = rows[:first]
    for p in items:  # queued, written in batches: a list read costs no extra statement
        audit.record_read(
            ctx, "patient.read", clinic_id=p.clinic_id, target_type="patient", target_id=p.id
        )
    return Page(items, len(rows) > first, [encode_cursor(_sort_key(p)) for p in items])


async def get_patient(ctx: ServiceContext, patient_id: uuid.UUID) -> Patient:
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_READ)
    patient = await ctx.db.scalar(
        select(Patient).where(Patient.id == patient_id, patient_filter(principal))
    )
    if patient is None:
        raise NotFound("Patient not found.")
    audit.record_read(
        ctx,
        "patient.read",
        clinic_id=patient.clinic_id,
        target_type="patient",
        target_id=patient.id,
    )
    return patient


async def create_patient(ctx: ServiceContext, fields: PatientFields) -> Patient:
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_WRITE)
    assert principal.clinic_id is not None
    patient = Patient(clinic_id=principal.clinic_id, archived=False)
    for required in ("first_name", "last_name"):
        if getattr(fields, required) is UNSET:
            setattr(fields, required, None)
    await _apply(ctx, patient, fields)
    ctx.db.add(patient)
    await _flush_unique(ctx)
    audit.record(
        ctx.db,
        "patient.created",
        clinic_id=patient.clinic_id,
        actor_user_id=principal.user_id,
        target_type="patient",
        target_id=patient.id,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return patient


async def update_patient(
    ctx: ServiceContext, patient_id: uuid.UUID, fields: PatientFields
) -> Patient:
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_WRITE)
    patient = await get_patient(ctx, patient_id)
    changed = await _apply(ctx, patient, fields)
    patient.updated_at = utcnow()
    await _flush_unique(ctx)
    audit.record(
        ctx.db,
        "patient.updated",
        clinic_id=patient.clinic_id,
        actor_user_id=principal.user_id,
        target_type="patient",
        target_id=patient.id,
        details={"fields": sorted(changed)},
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return patient


async def set_archived(ctx: ServiceContext, patient_id: uuid.UUID, archived: bool) -> Patient:
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_WRITE)
    patient = await get_patient(ctx, patient_id)
    patient.archived = archived
    patient.updated_at = utcnow()
    audit.record(
        ctx.db,
        "patient.archived" if archived else "patient.unarchived",
        clinic_id=patient.clinic_id,
        actor_user_id=principal.user_id,
        target_type="patient",
        target_id=patient.id,
        request_id=ctx.request_id,
        ip=ctx.ip,
    )
    return patient


async def _apply(ctx: ServiceContext, patient: Patient, fields: PatientFields) -> set[str]:
    changed: set[str] = set()

    def put(name: str, value: object) -> None:
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.add(name)

    if fields.first_name is not UNSET:
        put("first_name", validation.required_text(fields.first_name, "firstName", max_length=100))  # type: ignore[arg-type]
    if fields.last_name is not UNSET:
        put("last_name", validation.required_text(fields.last_name, "lastName", max_length=100))  # type: ignore[arg-type]
    if fields.date_of_birth is not UNSET:
        dob = fields.date_of_birth
        if dob is not None and (
            not isinstance(dob, date) or dob > utcnow().date() or dob.year < 1900
        ):
            raise ValidationFailed(
                "`dateOfBirth` must be a past date after 1900.", field="dateOfBirth"
            )
        put("date_of_birth", dob)
    if fields.email is not UNSET:
        put("email", validation.email(fields.email, required=False))  # type: ignore[arg-type]
    if fields.phone is not UNSET:
        put("phone", validation.phone(fields.phone))  # type: ignore[arg-type]
    if fields.emr_system is not UNSET or fields.emr_id is not UNSET:
        system = patient.emr_system if fields.emr_system is UNSET else fields.emr_system
        emr_id = patient.emr_id if fields.emr_id is UNSET else fields.emr_id
        system = validation.text(system, "emrSystem", max_length=40, required=False)  # type: ignore[arg-type]
        emr_id = validation.text(emr_id, "emrId", max_length=128, required=False)  # type: ignore[arg-type]
        if (system is None) != (emr_id is None):
            raise ValidationFailed("`emrSystem` and `emrId` are set together.", field="emrId")
        put("emr_system", system)
        put("emr_id", emr_id)
    if fields.user_id is not UNSET:
        if fields.user_id is not None:
            account = await ctx.db.scalar(
                select(User).where(
                    User.id == fields.user_id,
                    User.clinic_id == patient.clinic_id,
                    User.role == Role.PATIENT,
                )
            )
            if account is None:
                raise ValidationFailed(
                    "`userId` must be a patient account of this clinic.", field="userId"
                )
        put("user_id", fields.user_id)
    return changed


async def _flush_unique(ctx: ServiceContext) -> None:
    # A failed flush fails the whole mutation; its transaction is rolled back.
    try:
        await ctx.db.flush()
    except IntegrityError as exc:
        raise Conflict("Another patient of this clinic has that EMR id.", field="emrId") from exc
