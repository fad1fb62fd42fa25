"""FHIR R4 resources ↔ the gateway's EMR types (fhirclient models on the FHIR side)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhirclient.models.appointment import Appointment
from fhirclient.models.documentreference import DocumentReference
from fhirclient.models.patient import Patient

from gateway.integrations import AppointmentPush, DocumentPush, EmrPatient, PatientQuery

# Our own ids on EMR resources, so a retried create finds its first result.
SESSION_ID_SYSTEM = "urn:santana:counseling-session"
DOCUMENT_ID_SYSTEM = "urn:santana:patient-document"
MRN_TYPE_CODE = "MR"  # HL7 v2 table 0203: medical record number


def search_params(query: PatientQuery) -> dict[str, str]:
    params: dict[str, str] = {"_count": str(min(query.limit, 50))}
    if query.family:
        params["family"] = query.family
    if query.given:
        params["given"] = query.given
    if query.birth_date:
        params["birthdate"] = query.birth_date.isoformat()
    if query.identifier:
        params["identifier"] = query.identifier
    return params


def _name(patient: Patient) -> tuple[str, str]:
    names = patient.name or []
    chosen = next((n for n in names if n.use == "official"), names[0] if names else None)
    if chosen is None:
        return "", ""
    family = chosen.family or ""
    given = " ".join(chosen.given or [])
    return family, given


def _telecom(patient: Patient, system: str) -> str | None:
    for point in patient.telecom or []:
        if point.system == system and point.value and point.period is None:
            return str(point.value)
    return next(
        (str(p.value) for p in patient.telecom or [] if p.system == system and p.value), None
    )


def _mrn(patient: Patient) -> str | None:
    for identifier in patient.identifier or []:
        codes = [c.code for c in (identifier.type.coding or [])] if identifier.type else []
        if MRN_TYPE_CODE in codes and identifier.value:
            return str(identifier.value)
    usual = [i for i in patient.identifier or [] if i.use in ("usual", "official") and i.value]
    return str(usual[0].value) if usual else None


def to_emr_patient(patient: Patient) -> EmrPatient:
    family, given = _name(patient)
    return EmrPatient(
        emr_id=str(patient.id),
        family=family,
        given=given,
        birth_date=patient.birthDate.date if patient.birthDate else None,
        email=_telecom(patient, "email"),
        phone=_telecom(patient, "phone"),
        gender=patient.gender,
        mrn=_mrn(patient),
    )


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def appointment(push: AppointmentPush) -> Appointment:
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": push.status,
        "identifier": [{"system": SESSION_ID_SYSTEM, "value": push.reference}],
        "description": push.description,
        "start": _instant(push.starts_at),
        "end": _instant(push.ends_at),
        "minutesDuration": max(1, int((push.ends_at - push.starts_at).total_seconds() // 60)),
        "participant": [
            {
                "actor": {"reference": f"Patient/{push.emr_patient_id}"},
                "required": "required",
                "status": "declined" if push.status == "cancelled" else "accepted",
            }
        ],
    }
    if push.emr_appointment_id:
        body["id"] = push.emr_appointment_id
    return Appointment(body)


def document_reference(push: DocumentPush) -> DocumentReference:
    return DocumentReference(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "identifier": [{"system": DOCUMENT_ID_SYSTEM, "value": push.reference}],
            "type": {"text": push.kind},
            "subject": {"reference": f"Patient/{push.emr_patient_id}"},
            "date": _instant(push.created_at),
            "description": push.title,
            "content": [
                {
                    "attachment": {
                        "contentType": push.content_type,
                        "data": push.content_b64,
                        "title": push.title,
                        "creation": _instant(push.created_at),
                    }
                }
            ],
        }
    )
