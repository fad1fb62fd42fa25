"""The operations each scenario sends, who sends them, and the data file wrk's Lua reads.

Tokens come from real logins (admins with their TOTP code). Requests are spread
across every clinic and logged-in user; write targets are disjoint pools so a
write never fails because an earlier one changed its row.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.config import PASSWORD, Scale
from benchmarks.datagen import Account, DataSet, booked_days
from gateway.security import totp
from schema.ids import to_global_id

DASHBOARD = """query Dashboard($first: Int!) { patients(first: $first) { edges { node {
  fullName sessions(first: 5) { startsAt counselor { fullName } } } } } }"""

DAY_VIEW = """query DayView($from: DateTime!, $to: DateTime!, $counselor: ID!) {
  sessions(from: $from, to: $to, counselorId: $counselor, first: 20) { edges { node {
    id startsAt endsAt status modality patient { fullName } } } } }"""

PATIENT = """query PatientDetail($id: ID!) { patient(id: $id) {
  id fullName dateOfBirth email phone sessions(first: 10) { startsAt status counselor { fullName } } } }"""

ME = "query Me { me { id fullName email role clinic { name timezone } } }"

SCHEDULE = """mutation Schedule($input: ScheduleSessionInput!) { scheduleSession(input: $input) {
  id startsAt status } }"""

RESCHEDULE = """mutation Reschedule($id: ID!, $at: DateTime!) { rescheduleSession(id: $id, startsAt: $at) {
  id startsAt status } }"""

CANCEL = """mutation Cancel($id: ID!) { cancelSession(id: $id, reason: "patient request") { id status } }"""

LOGIN = """mutation Login($email: String!, $password: String!, $otp: String) {
  login(email: $email, password: $password, otp: $otp) { accessToken twoFactorRequired } }"""

# The same dashboard shape on PostGraphile's generated schema. `fullName` of a
# patient is computed by the gateway; PostGraphile sends the two columns instead.
PG_DASHBOARD = """query Dashboard($clinic: UUID!) { allPatients(first: 50, condition: {clinicId: $clinic},
  orderBy: [LAST_NAME_ASC, FIRST_NAME_ASC]) { edges { node { firstName lastName
    counselingSessionsByClinicIdAndPatientId(first: 5, orderBy: [STARTS_AT_DESC]) { nodes {
      startsAt userByClinicIdAndCounselorId { fullName } } } } } } }"""

# Mixed: 80% small reads, 15% dashboard, 5% writes.
MIX = (
    ("day", 0.40),
    ("patient", 0.25),
    ("me", 0.15),
    ("dashboard", 0.15),
    ("schedule", 0.02),
    ("reschedule", 0.015),
    ("cancel", 0.015),
)
WRITE_DAYS_AHEAD = 60  # writes book hours far past the generated calendar: never a clash


@dataclass
class Logins:
    tokens: dict[uuid.UUID, str] = field(default_factory=dict)  # user id -> access token
    admins: list[Account] = field(default_factory=list)
    counselors: list[Account] = field(default_factory=list)
    patients: list[Account] = field(default_factory=list)


def pick_accounts(
    data: DataSet, counselors_per_clinic: int = 3, patients_per_clinic: int = 2
) -> list[Account]:
    """Every clinic's admin, a few of its counselors and patient users (logins cost an argon2 each)."""
    chosen: list[Account] = list(data.admins)
    for pool, per in (
        (data.counselors, counselors_per_clinic),
        (data.patient_users, patients_per_clinic),
    ):
        seen: dict[uuid.UUID, int] = {}
        for acc in pool:
            if seen.get(acc.clinic_id, 0) < per:
                seen[acc.clinic_id] = seen.get(acc.clinic_id, 0) + 1
                chosen.append(acc)
    return chosen


async def login_all(base_url: str, accounts: list[Account], concurrency: int = 8) -> Logins:
    logins = Logins()
    gate = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, acc: Account) -> None:
        otp = totp.current_code(acc.totp_secret) if acc.totp_secret else None
        variables = {"email": acc.email, "password": PASSWORD, "otp": otp}
        async with gate:
            r = await http.post("/graphql", json={"query": LOGIN, "variables": variables})
        body = r.json()
        token = (body.get("data") or {}).get("login", {}) or {}
        if r.status_code != 200 or not token.get("accessToken"):
            raise RuntimeError(f"login of {acc.email} failed: {r.status_code} {body}")
        logins.tokens[acc.user_id] = token["accessToken"]
        {"clinic_admin": logins.admins, "counselor": logins.counselors, "patient": logins.patients}[
            acc.role
        ].append(acc)

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await asyncio.gather(*(one(http, a) for a in accounts))
    for group in (logins.admins, logins.counselors, logins.patients):
        group.sort(key=lambda a: a.email)  # gather finishes in any order; keep the files stable
    return logins


def _id(value: object) -> uuid.UUID:
    assert isinstance(value, uuid.UUID)  # generated rows are plain tuples
    return value


def _at(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(query: str, variables: dict[str, Any]) -> str:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


@dataclass
class Requests:
    """Ready-made requests per kind, plus the pools the Lua script turns into writes."""

    reads: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    schedule: list[dict[str, str]] = field(default_factory=list)
    reschedule: list[dict[str, str]] = field(default_factory=list)
    cancel: list[dict[str, str]] = field(default_factory=list)
    write_base: int = 0
    held_back: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # one of each write, for counting


def build_requests(data: DataSet, logins: Logins, scale: Scale, seed: int = 11) -> Requests:
    rng = random.Random(seed)
    req = Requests()
    tok = logins.tokens
    req.reads["dashboard"] = [
        {"t": tok[a.user_id], "b": _body(DASHBOARD, {"first": 50})} for a in logins.admins
    ]
    req.reads["pg_dashboard"] = [
        {"t": tok[a.user_id], "b": _body(PG_DASHBOARD, {"clinic": str(a.clinic_id)})}
        for a in logins.admins
    ]
    days = booked_days(scale, data.anchor)
    day_reqs = []
    for acc in logins.counselors:
        for day in rng.sample(days, min(8, len(days))):
            start = datetime.combine(day, time(0), tzinfo=UTC)
            variables = {
                "from": _iso(start),
                "to": _iso(start + timedelta(days=1)),
                "counselor": to_global_id("User", acc.user_id),
            }
            day_reqs.append({"t": tok[acc.user_id], "b": _body(DAY_VIEW, variables)})
    rng.shuffle(day_reqs)
    req.reads["day"] = day_reqs
    by_clinic: dict[uuid.UUID, list[tuple[object, ...]]] = {}
    for p in data.patients:
        by_clinic.setdefault(p[0], []).append(p)  # type: ignore[arg-type]
    staff = logins.admins + logins.counselors
    patient_reqs = []
    for acc in staff:
        for p in rng.sample(by_clinic[acc.clinic_id], 10):
            patient_reqs.append(
                {
                    "t": tok[acc.user_id],
                    "b": _body(PATIENT, {"id": to_global_id("Patient", _id(p[1]))}),
                }
            )
    own = {p[8]: p[1] for p in data.patients if p[8] is not None}
    for acc in logins.patients:  # patients read their own record
        patient_reqs.append(
            {
                "t": tok[acc.user_id],
                "b": _body(PATIENT, {"id": to_global_id("Patient", _id(own[acc.user_id]))}),
            }
        )
    rng.shuffle(patient_reqs)
    req.reads["patient"] = patient_reqs
    everyone = staff + logins.patients
    req.reads["me"] = [{"t": tok[a.user_id], "b": _body(ME, {})} for a in everyone]
    _write_pools(rng, data, logins, req, by_clinic)
    return req


def _write_pools(
    rng: random.Random,
    data: DataSet,
    logins: Logins,
    req: Requests,
    by_clinic: dict[uuid.UUID, list[tuple[object, ...]]],
) -> None:
    tok = logins.tokens
    admin_of = {a.clinic_id: a for a in logins.admins}
    for acc in logins.counselors:  # counselors book for themselves; admins name the counselor
        for p in rng.sample([p for p in by_clinic[acc.clinic_id] if not p[7]], 5):
            req.schedule.append(
                {"t": tok[acc.user_id], "p": to_global_id("Patient", _id(p[1])), "c": ""}
            )
            admin = admin_of[acc.clinic_id]
            req.schedule.append(
                {
                    "t": tok[admin.user_id],
                    "p": to_global_id("Patient", _id(p[1])),
                    "c": to_global_id("User", acc.user_id),
                }
            )
    rng.shuffle(req.schedule)
    anchor = datetime.combine(data.anchor, time(0), tzinfo=UTC)
    logged_in = {a.user_id: a for a in logins.counselors}
    upcoming = [
        s
        for s in data.sessions
        if s[8] == "scheduled" and s[3] in logged_in and _at(s[4]) >= anchor + timedelta(days=1)
    ]  # type: ignore[operator]
    rng.shuffle(upcoming)
    targets = []
    for i, s in enumerate(upcoming):
        # A third by the clinic's admin, the rest by the session's own counselor.
        who = admin_of[s[0]] if i % 3 == 0 else logged_in[s[3]]  # type: ignore[index]
        targets.append({"t": tok[who.user_id], "id": to_global_id("CounselingSession", s[1])})  # type: ignore[arg-type]
    req.held_back = {"schedule": req.schedule[0], "reschedule": targets[0], "cancel": targets[1]}
    req.reschedule, req.cancel = targets[2:2002], targets[2002:]
    req.write_base = int((anchor + timedelta(days=WRITE_DAYS_AHEAD)).timestamp())


def _lua(value: Any) -> str:
    """A Lua literal: strings via JSON escaping, which Lua's string syntax accepts for our ASCII data."""
    if isinstance(value, dict):
        return "{" + ",".join(f"[{json.dumps(k)}]={_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "{" + ",\n".join(_lua(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def write_lua(
    path: Path,
    req: Requests,
    mix: list[tuple[str, float]],
    path_url: str = "/graphql",
    think_ms: int = 0,
    cancel_part: tuple[int, int] = (0, 1),
) -> None:
    """The data file a wrk run loads: which kinds to send, in what shares, and the payloads.

    `think_ms`: each connection waits about this long between requests (uniform 0.5x-1.5x),
    like a user reading the page: N connections then offer ~N / think time requests per second.
    `cancel_part` (k, n): this run cancels only the k-th of n slices of the cancel pool and books
    hours from its own range, so two runs in one benchmark never collide on a write.
    """
    part, parts = cancel_part
    size = -(-len(req.cancel) // parts)
    cancel = req.cancel[part * size : (part + 1) * size]
    used = {kind for kind, _ in mix}
    doc = {
        "path": path_url,
        "think_ms": think_ms,
        "slot_base": cancel_part[0] * 100_000,
        "mix": [[k, w] for k, w in mix],
        "reads": {k: v for k, v in req.reads.items() if k in used},
        "schedule": req.schedule if "schedule" in used else [],
        "reschedule": req.reschedule if "reschedule" in used else [],
        "cancel": cancel if "cancel" in used else [],
        "write_base": req.write_base,
        # JSON-encoded already: the Lua script splices them into request bodies as they are.
        "queries": {
            k: json.dumps(q)
            for k, q in (("schedule", SCHEDULE), ("reschedule", RESCHEDULE), ("cancel", CANCEL))
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("return " + _lua(doc) + "\n")
