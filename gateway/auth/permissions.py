"""Who may do what: the one place role rules live.

Two kinds of rule:
- `require(principal, action)`: may this role perform this action at all?
- row filters (`patient_filter`, `session_filter`, …): which rows of its clinic
  this principal may see. Every read in gateway.services goes through them, and
  the clinic fence comes first (the database's RLS is the second wall).

Platform admins manage clinics and their staff but do not read clinical data;
counseling notes are readable only by the counselor who holds the session.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import QueryableAttribute

from gateway.auth.principal import Principal
from gateway.db.models import CounselingSession, Patient, Role, User
from gateway.errors import Forbidden
from gateway.payments.models import Payment


class Action(str, enum.Enum):
    CLINIC_LIST = "clinic.list"
    CLINIC_CREATE = "clinic.create"
    CLINIC_READ = "clinic.read"
    USER_LIST = "user.list"
    USER_MANAGE = "user.manage"
    PATIENT_READ = "patient.read"
    PATIENT_WRITE = "patient.write"
    SESSION_READ = "session.read"
    SESSION_WRITE = "session.write"
    AUDIT_READ = "audit.read"
    PAYMENT_READ = "payment.read"
    PAYMENT_CREATE = "payment.create"
    PAYMENT_REFUND = "payment.refund"
    DOCUMENT_READ = "document.read"
    DOCUMENT_UPLOAD = "document.upload"
    DOCUMENT_DELETE = "document.delete"
    EMR_SEARCH = "emr.search"  # search the clinic's EMR (discloses EMR patient data)
    EMR_IMPORT = "emr.import"  # import, link and re-sync patients from the EMR


_GRANTS: dict[Role, frozenset[Action]] = {
    Role.PLATFORM_ADMIN: frozenset(
        {
            Action.CLINIC_LIST,
            Action.CLINIC_CREATE,
            Action.CLINIC_READ,
            Action.USER_LIST,
            Action.USER_MANAGE,
            Action.AUDIT_READ,
        }
    ),
    Role.CLINIC_ADMIN: frozenset(
        {
            Action.CLINIC_READ,
            Action.USER_LIST,
            Action.USER_MANAGE,
            Action.PATIENT_READ,
            Action.PATIENT_WRITE,
            Action.SESSION_READ,
            Action.SESSION_WRITE,
            Action.AUDIT_READ,
            Action.PAYMENT_READ,
            Action.PAYMENT_CREATE,
            Action.PAYMENT_REFUND,
            Action.DOCUMENT_READ,
            Action.DOCUMENT_UPLOAD,
            Action.DOCUMENT_DELETE,
            Action.EMR_SEARCH,
            Action.EMR_IMPORT,
        }
    ),
    Role.COUNSELOR: frozenset(
        {
            Action.CLINIC_READ,
            Action.USER_LIST,
            Action.PATIENT_READ,
            Action.PATIENT_WRITE,
            Action.SESSION_READ,
            Action.SESSION_WRITE,
            Action.PAYMENT_READ,
            Action.PAYMENT_CREATE,
            Action.DOCUMENT_READ,
            Action.DOCUMENT_UPLOAD,
            Action.DOCUMENT_DELETE,
            Action.EMR_SEARCH,
            Action.EMR_IMPORT,
        }
    ),
    Role.PATIENT: frozenset(
        {
            Action.CLINIC_READ,
            Action.PATIENT_READ,
            Action.SESSION_READ,
            Action.PAYMENT_READ,
            Action.PAYMENT_CREATE,
            Action.DOCUMENT_READ,  # their own documents (the patient filter)
            Action.DOCUMENT_UPLOAD,
        }
    ),
}

# Roles a clinic admin may hand out; only platform admins create clinic admins elsewhere.
ASSIGNABLE_ROLES: dict[Role, frozenset[Role]] = {
    Role.PLATFORM_ADMIN: frozenset({Role.CLINIC_ADMIN, Role.COUNSELOR, Role.PATIENT}),
    Role.CLINIC_ADMIN: frozenset({Role.CLINIC_ADMIN, Role.COUNSELOR, Role.PATIENT}),
}


def allowed(principal: Principal, action: Action) -> bool:
    return action in _GRANTS.get(principal.role, frozenset())


def require(principal: Principal, action: Action) -> None:
    if not allowed(principal, action):
        raise Forbidden("You are not allowed to do that.", action=action.value)


def require_clinic(principal: Principal, clinic_id: uuid.UUID) -> None:
    """Non-platform principals act only inside their own clinic."""
    if not principal.is_platform_admin and principal.clinic_id != clinic_id:
        # Same wording as a missing row: do not confirm another tenant's ids exist.
        raise Forbidden("You are not allowed to do that.")


def clinic_filter(
    principal: Principal, clinic_column: QueryableAttribute[Any]
) -> ColumnElement[bool]:
    if principal.is_platform_admin:
        return true()
    return clinic_column == principal.clinic_id


def patient_filter(principal: Principal) -> ColumnElement[bool]:
    if not allowed(principal, Action.PATIENT_READ):
        return false()
    fence = clinic_filter(principal, Patient.clinic_id)
    if principal.role is Role.PATIENT:
        return fence & (Patient.user_id == principal.user_id)
    return fence


def session_filter(principal: Principal) -> ColumnElement[bool]:
    if not allowed(principal, Action.SESSION_READ):
        return false()
    fence = clinic_filter(principal, CounselingSession.clinic_id)
    if principal.role is Role.COUNSELOR:
        return fence & (CounselingSession.counselor_id == principal.user_id)
    if principal.role is Role.PATIENT:
        own = select(Patient.id).where(
            Patient.clinic_id == principal.clinic_id, Patient.user_id == principal.user_id
        )
        return fence & CounselingSession.patient_id.in_(own.scalar_subquery())
    return fence


def payment_filter(principal: Principal) -> ColumnElement[bool]:
    """Payments of the sessions this principal may see (admins: the whole clinic)."""
    if not allowed(principal, Action.PAYMENT_READ):
        return false()
    fence = clinic_filter(principal, Payment.clinic_id)
    if principal.role is Role.CLINIC_ADMIN:
        return fence
    visible = select(CounselingSession.id).where(session_filter(principal))
    return fence & Payment.session_id.in_(visible.scalar_subquery())


def user_filter(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.PATIENT:
        # Patients see only their own account and the counselors they meet.
        return (User.clinic_id == principal.clinic_id) & (
            (User.id == principal.user_id) | (User.role == Role.COUNSELOR)
        )
    if not allowed(principal, Action.USER_LIST):
        return false()
    return clinic_filter(principal, User.clinic_id)


def may_read_notes(principal: Principal, session: CounselingSession) -> bool:
    return (
        principal.role is Role.COUNSELOR
        and session.counselor_id == principal.user_id
        and (session.clinic_id == principal.clinic_id)
    )


def may_manage_session(principal: Principal, session: CounselingSession) -> bool:
    if not allowed(principal, Action.SESSION_WRITE) or principal.clinic_id != session.clinic_id:
        return False
    return principal.role is Role.CLINIC_ADMIN or session.counselor_id == principal.user_id
