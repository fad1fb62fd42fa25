"""The table of cross-tenant attempts that tests/schema/test_tenant_isolation.py runs.

One row per thing a user of clinic B might try against clinic A; every root query and
mutation field must appear in some row, or in TENANT_FREE with the reason it needs no
tenant. Outcomes are per B role: an error code, EMPTY (no error, every connection in
the answer empty) or OWN (no error, only B's own data, checked for leaks).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.db.models import Clinic, CounselingSession, Patient, User
from gateway.integrations.models import Integration
from gateway.payments.transitions import derived_id
from schema.ids import to_global_id
from tests.factories import PASSWORD, World, tomorrow_at

ROLES = ("admin", "counselor", "patient_user")  # attributes of ClinicWorld: B's three roles
EMPTY, OWN = "EMPTY", "OWN"
NF, FORBIDDEN = "NOT_FOUND", "FORBIDDEN"
PLUGIN = "mail_sendgrid"  # clinic A has it set up (a row is enough; it need not be installed)
A_SECRETS = {"api_key": "SG.secret-of-clinic-a"}
NEW_PASSWORD = "a-brand-new-password"
TYPE_NAMES = {
    Clinic: "Clinic",
    User: "User",
    Patient: "Patient",
    CounselingSession: "CounselingSession",
    Integration: "Integration",
}


def gid(row: Any) -> str:
    return to_global_id(TYPE_NAMES[type(row)], row.id)


@dataclass
class Targets:
    """What B aims at: clinic A's rows, a live refresh token of A's counselor, and
    A's mail integration (with a config value and an encrypted secret)."""

    w: World
    a_refresh: str
    a_integration: Integration

    @property
    def a_rows(self) -> list[Any]:
        a = self.w.a
        users = [a.admin, a.counselor, a.counselor2, a.patient_user]
        return [a.clinic, *users, *a.patients, *a.sessions, self.a_integration]


Variables = Callable[[Targets], dict[str, Any]]


@dataclass(frozen=True)
class Attempt:
    name: str
    what: str  # what B tries, in words
    query: str
    variables: Variables
    outcome: dict[str, str]  # B role -> error code, EMPTY or OWN


def every(outcome: str) -> dict[str, str]:
    return dict.fromkeys(ROLES, outcome)


def staff(outcome: str, counselor: str | None = None) -> dict[str, str]:
    """Admins (and counselors, unless told otherwise) get `outcome`; patients FORBIDDEN."""
    return {"admin": outcome, "counselor": counselor or outcome, "patient_user": FORBIDDEN}


def admin_only(outcome: str) -> dict[str, str]:
    return staff(outcome, counselor=FORBIDDEN)


def ids(**picks: Callable[[World], Any]) -> Variables:
    """Variables holding global ids of rows picked from the world."""
    return lambda t: {name: gid(pick(t.w)) for name, pick in picks.items()}


def nothing(t: Targets) -> dict[str, Any]:
    return {}


def schedule(patient: Callable[[World], Any], counselor: Callable[[World], Any]) -> Variables:
    def variables(t: Targets) -> dict[str, Any]:
        picked = {"patientId": gid(patient(t.w)), "counselorId": gid(counselor(t.w))}
        return {"input": {**picked, "startsAt": tomorrow_at(16).isoformat()}}

    return variables


def new_user(role: str, clinic: Callable[[World], Any] | None = None, **extra: Any) -> Variables:
    def variables(t: Targets) -> dict[str, Any]:
        fields = {"email": "mole@b.test", "fullName": "Mole", "role": role, **extra}
        return {"input": fields | ({"clinicId": gid(clinic(t.w))} if clinic else {})}

    return variables


def full_name(patient: Patient) -> str:
    return f"{patient.first_name} {patient.last_name}"


def a_clinic_and(**extra: Any) -> Variables:
    return lambda t: {"c": gid(t.w.a.clinic), **extra}


PATIENTS = """query($s: String, $archived: Boolean) {
  patients(first: 100, search: $s, archived: $archived) {
    nodes { id fullName email user { id email } sessions { id } } } }"""
SESSIONS = """query($p: ID, $c: ID) { sessions(first: 100, patientId: $p, counselorId: $c) {
  nodes { id startsAt patient { id fullName email } counselor { id email fullName } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename ... on Clinic { id name slug }
  ... on User { id email fullName } ... on Patient { id fullName patientEmail: email }
  ... on CounselingSession { id notes } } }"""
CLINIC = """query($id: ID!) { clinic(id: $id) { id name slug
  patients(archived: null) { nodes { id fullName } } users { id email }
  integrations { id config } } }"""
OWN_CLINIC_SEARCH = """query($s: String!) {
  clinic { id patients(search: $s, archived: null) { nodes { id fullName } } } }"""
OWN_INTEGRATIONS = """{
  clinic { id integrations { id plugin config secrets { name isSet masked } } } }"""
PATIENT = """query($id: ID!) {
  patient(id: $id) { id fullName email user { email } sessions { id notes } } }"""
SESSION = """query($id: ID!) {
  session(id: $id) { id status notes patient { fullName } counselor { email } } }"""
CREATE_USER = """mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id email clinic { id name } } invitationToken } }"""
CREATE_PATIENT = """mutation($u: ID) {
  createPatient(input: {firstName: "Mole", lastName: "Mole", userId: $u}) {
    id user { id email } } }"""
UPDATE_PATIENT = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id fullName email user { id email } } }"""
SCHEDULE = """mutation($input: ScheduleSessionInput!) {
  scheduleSession(input: $input) { id patient { id fullName } counselor { id email } } }"""
RESCHEDULE = """mutation($id: ID!, $at: DateTime!) {
  rescheduleSession(id: $id, startsAt: $at) { id startsAt } }"""
ENABLE = """mutation($c: ID, $config: JSON) {
  enableIntegration(plugin: "mail_sendgrid", clinicId: $c, config: $config) { id config } }"""
UPDATE_INTEGRATION = """mutation($c: ID, $s: JSON) {
  updateIntegration(plugin: "mail_sendgrid", clinicId: $c, secrets: $s) {
    id secrets { name masked } } }"""
DISABLE = """mutation($c: ID) {
  disableIntegration(plugin: "mail_sendgrid", clinicId: $c) { id enabled config } }"""
TEST_INTEGRATION = """mutation($c: ID) {
  testIntegration(plugin: "mail_sendgrid", clinicId: $c) {
    ok message integration { id config } } }"""
AUDIT = """query($c: ID, $actor: ID, $p: ID) {
  auditEvents(first: 100, clinicId: $c, actorId: $actor, patientId: $p) {
    nodes { id action clinicId actorId targetId patientId details actor { id email } } } }"""
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) {
  changePassword(currentPassword: $c, newPassword: $n) }"""


def a_payment(t: Targets) -> dict[str, Any]:
    """The id A's first payment for its past session has (ids derive from clinic + session)."""
    a = t.w.a
    return {"id": to_global_id("Payment", derived_id(a.clinic.id, a.past_session.id, 1))}


def a_document(t: Targets) -> dict[str, Any]:
    return {"id": to_global_id("PatientDocument", uuid.uuid5(t.w.a.clinic.id, "document"))}


PAYMENT = """query($id: ID!) { payment(id: $id) { id status session { id } } }"""
PAYMENTS = "{ payments { id status amount { amount } session { id patient { fullName } } } }"
CREATE_PAYMENT = """mutation($id: ID!) {
  createSessionPayment(sessionId: $id) { orderId payment { id amount { amount } } } }"""
REFUND_PAYMENT = """mutation($id: ID!) { refundPayment(paymentId: $id) { id status } }"""
CONFIRM_RAZORPAY = """mutation($id: ID!) { confirmRazorpayPayment(paymentId: $id,
  razorpayPaymentId: "pay_1", razorpayOrderId: "order_1", razorpaySignature: "00") { id } }"""
EMAILS = "{ emailMessages { id notification recipient status } }"
EMAILS_OF = "query($c: ID) { emailMessages(clinicId: $c) { id recipient } }"

A = Attempt
# fmt: off
ATTEMPTS = [
    # ---- queries ----
    A("me", "to read its own account", "{ me { id email clinic { id name } } }", nothing,
      every(OWN)),
    A("clinic-A", "clinic(id: A) with patients, users, integrations", CLINIC,
      ids(id=lambda w: w.a.clinic), every(NF)),
    A("own-clinic-search-A", "its own clinic's patients, searched by A's last name",
      OWN_CLINIC_SEARCH, lambda t: {"s": t.w.a.own_patient.last_name}, every(EMPTY)),
    A("own-clinic-integrations", "its own clinic's integrations", OWN_INTEGRATIONS, nothing,
      admin_only(OWN)),
    A("clinics", "to list every clinic", "{ clinics { id name slug } }", nothing, every(FORBIDDEN)),
    A("patients-search-A-name", "patients(search: A's patient's full name)", PATIENTS,
      lambda t: {"s": full_name(t.w.a.own_patient), "archived": None}, every(EMPTY)),
    A("patients-search-A-email", "patients(search: A's patient's email)", PATIENTS,
      lambda t: {"s": t.w.a.own_patient.email, "archived": None}, every(EMPTY)),
    A("patients-all", "every patient it can list, archived or not", PATIENTS,
      lambda t: {"archived": None}, every(OWN)),
    A("patient-A", "patient(id: A's patient) with sessions, notes and login", PATIENT,
      ids(id=lambda w: w.a.own_patient), every(NF)),
    A("sessions-of-A-patient", "sessions(patientId: A's patient)", SESSIONS,
      ids(p=lambda w: w.a.own_patient), every(EMPTY)),
    A("sessions-of-A-counselor", "sessions(counselorId: A's counselor)", SESSIONS,
      ids(c=lambda w: w.a.counselor), every(EMPTY)),
    A("sessions-B-patient-A-counselor", "sessions(patientId: B's, counselorId: A's)", SESSIONS,
      ids(p=lambda w: w.b.own_patient, c=lambda w: w.a.counselor), every(EMPTY)),
    A("sessions-all", "every session it can list", SESSIONS, nothing, every(OWN)),
    A("session-A", "session(id: A's past session) with its notes", SESSION,
      ids(id=lambda w: w.a.past_session), every(NF)),
    A("node-A-clinic", "node(id: A's clinic)", NODE, ids(id=lambda w: w.a.clinic), every(NF)),
    A("node-A-counselor", "node(id: A's counselor)", NODE, ids(id=lambda w: w.a.counselor),
      every(NF)),
    A("node-A-patient-login", "node(id: A's patient login)", NODE,
      ids(id=lambda w: w.a.patient_user), every(NF)),
    A("node-A-patient", "node(id: A's patient)", NODE, ids(id=lambda w: w.a.own_patient),
      every(NF)),
    A("node-A-session", "node(id: A's session)", NODE, ids(id=lambda w: w.a.past_session),
      every(NF)),
    A("node-A-integration", "node(id: A's integration)", NODE,
      lambda t: {"id": gid(t.a_integration)}, every(NF)),
    A("availableIntegrations", "to list installed plugins", "{ availableIntegrations { name } }",
      nothing, admin_only(OWN)),
    A("pluginProblems", "to list plugin problems", "{ pluginProblems { name reason } }", nothing,
      every(FORBIDDEN)),
    A("integrationContractVersion", "the contract version (a constant)",
      "{ integrationContractVersion }", nothing, every(OWN)),
    A("auditEvents-of-A", "auditEvents(clinicId: A)", AUDIT, ids(c=lambda w: w.a.clinic),
      every(FORBIDDEN)),
    A("auditEvents-by-A-actor", "auditEvents(actorId: A's counselor, who has logged in)", AUDIT,
      ids(actor=lambda w: w.a.counselor), admin_only(EMPTY)),
    A("auditEvents-of-A-patient", "auditEvents(patientId: A's patient)", AUDIT,
      ids(p=lambda w: w.a.own_patient), admin_only(EMPTY)),
    A("auditEvents-all", "the whole audit log it may read", AUDIT, nothing, admin_only(OWN)),
    A("alerts", "the operations alerts (all clinics)", "{ alerts { key message } }", nothing,
      every(FORBIDDEN)),
    A("businessMetrics", "business metrics across clinics",
      "{ businessMetrics { totalClinics totalPatients } }", nothing, every(FORBIDDEN)),
    A("twoFactorStatus", "its own 2FA status", "{ twoFactorStatus { enabled } }", nothing,
      every(OWN)),
    A("payment-A", "payment(id: a payment id of A's session)", PAYMENT, a_payment, every(NF)),
    A("payments-all", "every payment it may list", PAYMENTS, nothing, every(OWN)),
    A("emailMessages-all", "every email it may list", EMAILS, nothing, admin_only(OWN)),
    A("emailMessages-of-A", "emailMessages(clinicId: A)", EMAILS_OF, a_clinic_and(),
      admin_only(NF)),
    A("bouncedEmailAddresses-of-A", "bouncedEmailAddresses(clinicId: A)",
      "query($c: ID) { bouncedEmailAddresses(clinicId: $c) { address } }", a_clinic_and(),
      admin_only(NF)),
    A("emailSettings-of-A", "emailSettings(clinicId: A)",
      "query($c: ID) { emailSettings(clinicId: $c) { senderName replyTo } }", a_clinic_and(),
      admin_only(NF)),
    # Off outside development; in development a clinic admin reads only its own clinic's.
    A("devMailbox", "the development mailbox", "{ devMailbox { id to subject } }", nothing,
      every(FORBIDDEN)),
    # ---- mutations ----
    A("createClinic", "to create a clinic (a tenant)",
      'mutation { createClinic(input: {name: "Mole", slug: "mole"}) { id } }', nothing,
      every(FORBIDDEN)),
    A("createUser-in-A", "createUser(clinicId: A's clinic, role: CLINIC_ADMIN)", CREATE_USER,
      new_user("CLINIC_ADMIN", clinic=lambda w: w.a.clinic), every(FORBIDDEN)),
    A("createUser-platform-admin", "createUser(role: PLATFORM_ADMIN), a cross-clinic account",
      CREATE_USER, new_user("PLATFORM_ADMIN", password=NEW_PASSWORD), every(FORBIDDEN)),
    # Emails are unique across clinics (they are the login): reusing one of A's is a
    # CONFLICT for an admin, which says "taken" but never whose or where.
    A("createUser-A-email", "createUser(email: A's admin's email) in B", CREATE_USER,
      lambda t: {"input": {"email": t.w.a.admin.email, "fullName": "M", "role": "COUNSELOR"}},
      admin_only("CONFLICT")),
    A("createPatient-A-login", "createPatient(userId: A's patient login)", CREATE_PATIENT,
      ids(u=lambda w: w.a.patient_user), staff("VALIDATION")),
    A("updatePatient-A", "updatePatient(id: A's patient) to rename it", UPDATE_PATIENT,
      lambda t: {"id": gid(t.w.a.own_patient), "input": {"firstName": "Hacked"}}, staff(NF)),
    A("updatePatient-link-A-login", "updatePatient(id: B's, userId: A's patient login)",
      UPDATE_PATIENT,
      lambda t: {"id": gid(t.w.b.patients[1]), "input": {"userId": gid(t.w.a.patient_user)}},
      staff("VALIDATION")),
    A("archivePatient-A", "archivePatient(id: A's patient)",
      "mutation($id: ID!) { archivePatient(id: $id) { id archived fullName } }",
      ids(id=lambda w: w.a.patients[1]), staff(NF)),
    A("unarchivePatient-A", "unarchivePatient(id: A's patient)",
      "mutation($id: ID!) { unarchivePatient(id: $id) { id archived fullName } }",
      ids(id=lambda w: w.a.patients[1]), staff(NF)),
    A("scheduleSession-A-patient", "scheduleSession(patientId: A's, counselorId: B's)", SCHEDULE,
      schedule(lambda w: w.a.own_patient, lambda w: w.b.counselor), staff(NF)),
    # Counselors book only for themselves: FORBIDDEN before any lookup.
    A("scheduleSession-A-counselor", "scheduleSession(patientId: B's, counselorId: A's)",
      SCHEDULE, schedule(lambda w: w.b.patients[1], lambda w: w.a.counselor),
      staff(NF, counselor=FORBIDDEN)),
    A("rescheduleSession-A", "rescheduleSession(id: A's upcoming session)", RESCHEDULE,
      lambda t: {"id": gid(t.w.a.upcoming_session), "at": tomorrow_at(17).isoformat()}, staff(NF)),
    A("cancelSession-A", "cancelSession(id: A's upcoming session)",
      'mutation($id: ID!) { cancelSession(id: $id, reason: "mole") { id status } }',
      ids(id=lambda w: w.a.upcoming_session), staff(NF)),
    A("completeSession-A", "completeSession(id: A's past session, notes: ...)",
      'mutation($id: ID!) { completeSession(id: $id, notes: "x") { id status notes } }',
      ids(id=lambda w: w.a.past_session), staff(NF)),
    A("updateSessionNotes-A", "updateSessionNotes(id: A's past session)",
      'mutation($id: ID!) { updateSessionNotes(id: $id, notes: "x") { id notes } }',
      ids(id=lambda w: w.a.past_session), staff(NF)),
    A("enableIntegration-in-A", "enableIntegration(clinicId: A) with B's mail address", ENABLE,
      a_clinic_and(config={"from_address": "mole@b.test"}), every(FORBIDDEN)),
    A("updateIntegration-in-A", "updateIntegration(clinicId: A) replacing A's API key",
      UPDATE_INTEGRATION, a_clinic_and(s={"api_key": "mole"}), every(FORBIDDEN)),
    A("disableIntegration-in-A", "disableIntegration(clinicId: A)", DISABLE, a_clinic_and(),
      every(FORBIDDEN)),
    # Without clinicId the plugin name resolves in B, where it is not set up.
    A("disableIntegration-by-name", "disableIntegration(plugin: A's) without clinicId", DISABLE,
      nothing, admin_only(NF)),
    A("testIntegration-in-A", "testIntegration(clinicId: A)", TEST_INTEGRATION, a_clinic_and(),
      every(FORBIDDEN)),
    A("logout-A-token", "logout(refreshToken: A's counselor's refresh token)",
      "mutation($t: String) { logout(refreshToken: $t) }", lambda t: {"t": t.a_refresh},
      every(OWN)),
    A("logout-everything", "logout() of every login (its own only)", "mutation { logout }",
      nothing, every(OWN)),
    # The 2FA mutations act on the caller's own account only (run for real, with codes, in
    # test_two_factor_of_b_never_touches_a); here, without an enrollment, each is refused.
    A("startTwoFactorEnrollment", "to start its own 2FA setup",
      "mutation { startTwoFactorEnrollment { secret otpauthUri } }", nothing, every(OWN)),
    A("confirmTwoFactorEnrollment", "confirmTwoFactorEnrollment with no setup started",
      'mutation { confirmTwoFactorEnrollment(code: "123456") { recoveryCodes } }', nothing,
      every("CONFLICT")),
    A("disableTwoFactor", "disableTwoFactor while it has none",
      'mutation { disableTwoFactor(code: "123456") }', nothing, every("CONFLICT")),
    A("regenerateRecoveryCodes", "regenerateRecoveryCodes while it has no 2FA",
      'mutation { regenerateRecoveryCodes(code: "123456") }', nothing, every("CONFLICT")),
    A("changePassword", "changePassword (A's users share its password)", CHANGE_PASSWORD,
      lambda t: {"c": PASSWORD, "n": NEW_PASSWORD}, every(OWN)),
    A("createSessionPayment-A", "createSessionPayment(sessionId: A's upcoming session)",
      CREATE_PAYMENT, ids(id=lambda w: w.a.upcoming_session), every(NF)),
    A("refundPayment-A", "refundPayment(paymentId: a payment id of A's session)",
      REFUND_PAYMENT, a_payment, admin_only(NF)),
    A("confirmRazorpayPayment-A", "confirmRazorpayPayment(paymentId: one of A's session)",
      CONFIRM_RAZORPAY, a_payment, every(NF)),
    # Made-up document id; tests/documents/test_roundtrip.py tries B against A's real upload.
    A("patientDocument-A", "patientDocument(id: a document id of A)",
      "query($id: ID!) { patientDocument(id: $id) { id sha256 } }", a_document, every(NF)),
    A("documentDownloadLink-A", "documentDownloadLink(id: a document id of A)",
      "query($id: ID!) { documentDownloadLink(id: $id) { url } }", a_document, every(NF)),
    A("deletePatientDocument-A", "deletePatientDocument(id: a document id of A)",
      "mutation($id: ID!) { deletePatientDocument(id: $id) { id } }", a_document, staff(NF)),
    A("sendDocumentToEmr-A", "sendDocumentToEmr(id: a document id of A)",
      "mutation($id: ID!) { sendDocumentToEmr(id: $id) { id } }", a_document, staff(NF)),
    A("resetPassword-made-up", "resetPassword with a token it did not receive",
      'mutation { resetPassword(token: "made-up-token", newPassword: "a-brand-new-password") }',
      nothing, every("VALIDATION")),
    A("resendInvitation-A", "resendInvitation(userId: A's counselor)",
      "mutation($u: ID!) { resendInvitation(userId: $u) { id email } }",
      ids(u=lambda w: w.a.counselor), admin_only(NF)),
    A("updateEmailSettings-in-A", "updateEmailSettings(clinicId: A) to redirect replies",
      'mutation($c: ID) { updateEmailSettings(clinicId: $c, replyTo: "mole@b.test") { replyTo } }',
      a_clinic_and(), admin_only(NF)),
    A("clearBouncedEmailAddress-in-A", "clearBouncedEmailAddress(clinicId: A)",
      'mutation($c: ID) { clearBouncedEmailAddress(clinicId: $c, address: "pat0@a.example") }',
      a_clinic_and(), admin_only(NF)),
    A("searchEmrPatients-in-B", "searchEmrPatients (B has no EMR; A's EMR is not B's to use)",
      '{ searchEmrPatients(family: "Chalmers") { emrId linkedPatientId } }', nothing,
      staff("NOT_CONFIGURED")),
    A("importEmrPatient-link-A", "importEmrPatient linking an EMR record to A's patient",
      'mutation($p: ID) { importEmrPatient(emrId: "example", patientId: $p) { patient { id } } }',
      ids(p=lambda w: w.a.patients[0]), staff(NF)),
    A("syncPatientFromEmr-A", "syncPatientFromEmr(patientId: A's patient)",
      "mutation($p: ID!) { syncPatientFromEmr(patientId: $p) { id firstName emr { id } } }",
      ids(p=lambda w: w.a.patients[0]), staff(NF)),
]
# fmt: on

# Fields that run before any tenant is known: they act on whoever the credentials or the
# token name, never on an id the caller picks. field -> (why, the test covering it).
TENANT_FREE: dict[tuple[str, str], tuple[str, str]] = {
    ("mutation", "login"): (
        "email + password pick the account; there is no tenant yet",
        "test_login_as_b_gives_a_session_fenced_to_b",
    ),
    ("mutation", "refreshToken"): (
        "the opaque token names the user; holding it is the credential",
        "test_refresh_tokens_of_b_never_yield_a_and_leave_a_logins_alone",
    ),
    ("mutation", "verifyTwoFactor"): (
        "the signed challenge token from login names the user",
        "test_two_factor_of_b_never_touches_a",
    ),
    ("mutation", "acceptInvitation"): (
        "the one-time token names the invited user",
        "test_invitation_of_b_activates_only_b_and_leaves_a_invitation_alone",
    ),
    ("mutation", "requestPasswordReset"): (
        "the email names the account; the answer is the same for every address",
        "test_password_reset_asked_from_b_mails_only_the_account_owner",
    ),
    # Subscriptions take no ids: the connection's token names the clinic (websocket test).
    ("subscription", "sessionChanged"): (
        "no arguments; events of the token's clinic, loaded through session_filter",
        "test_subscriptions_of_b_never_hear_of_a",
    ),
    ("subscription", "paymentChanged"): (
        "no arguments; the token's clinic only, clinic admins only",
        "test_subscriptions_of_b_never_hear_of_a",
    ),
    ("subscription", "emailStatusChanged"): (
        "no arguments; the token's clinic only, clinic admins only",
        "test_subscriptions_of_b_never_hear_of_a",
    ),
}
