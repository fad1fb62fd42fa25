"""A deterministic, realistic data set: clinics, staff, patients and a fully booked calendar.

Same (scale, anchor) in, same rows out: ids come from a seeded generator, never
from uuid4 or the clock. Each counselor works weekdays, `slots_per_day` hourly
50-minute slots from 08:00 UTC, every slot booked; at any slot the counselors of a
clinic meet distinct patients, so neither a counselor nor a patient is ever
double-booked (by construction, and checked by `check_invariants`).
Sessions before the anchor are held (completed, some no-shows and cancellations);
those from the anchor on are scheduled (some cancelled).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from benchmarks.config import Scale

CLINIC_COLUMNS = ("id", "name", "slug", "timezone", "currency", "monthly_plan_fee", "created_at")
USER_COLUMNS = (
    "id",
    "clinic_id",
    "email",
    "full_name",
    "password_hash",
    "role",
    "is_active",
    "failed_login_count",
    "password_changed_at",
    "created_at",
    "totp_secret_encrypted",
    "totp_enabled_at",
)
PATIENT_COLUMNS = (
    "clinic_id",
    "id",
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "archived",
    "user_id",
    "created_at",
    "updated_at",
)
SESSION_COLUMNS = (
    "clinic_id",
    "id",
    "patient_id",
    "counselor_id",
    "starts_at",
    "ends_at",
    "duration_minutes",
    "modality",
    "status",
    "fee_amount",
    "currency",
    "cancel_reason",
    "created_at",
    "updated_at",
)
SESSION_MINUTES = 50
FIRST_SLOT_HOUR = 8

_FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farah",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kaya",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Yusuf",
    "Zoe",
    "Aisha",
    "Bruno",
    "Carmen",
    "Dmitri",
    "Esther",
    "Felix",
    "Gita",
    "Hannah",
    "Ivan",
    "Julia",
    "Kenji",
]
_LAST = [
    "Abbott",
    "Baker",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Huang",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zimmermann",
    "Andersen",
    "Bianchi",
    "Costa",
    "Novak",
]
_CITIES = [
    "Lisbon",
    "Austin",
    "Oslo",
    "Kyoto",
    "Lyon",
    "Porto",
    "Denver",
    "Malmo",
    "Leeds",
    "Graz",
    "Tucson",
    "Bergen",
    "Nantes",
    "Osaka",
    "Turin",
    "Cork",
    "Ghent",
    "Basel",
    "Tampa",
    "Split",
]
_ZONES = ("Europe/Lisbon", "America/Chicago", "Europe/Oslo", "Asia/Tokyo", "Europe/Paris")
_CURRENCIES = ("EUR", "USD", "NOK", "JPY", "EUR")
_FEES = (9000, 12000, 15000, 18000)
_MODALITIES = ("in_person", "video", "phone")


@dataclass(frozen=True)
class Account:
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    role: str
    totp_secret: str | None = None


@dataclass
class DataSet:
    anchor: date
    clinics: list[tuple[object, ...]] = field(default_factory=list)
    users: list[tuple[object, ...]] = field(default_factory=list)
    patients: list[tuple[object, ...]] = field(default_factory=list)
    sessions: list[tuple[object, ...]] = field(default_factory=list)
    admins: list[Account] = field(default_factory=list)
    counselors: list[Account] = field(default_factory=list)
    patient_users: list[Account] = field(default_factory=list)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _base32(rng: random.Random, length: int = 32) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(length))


def booked_days(scale: Scale, anchor: date) -> list[date]:
    """The weekdays the calendar covers, `days_ahead` of its calendar days from the anchor on."""
    start = anchor - timedelta(days=scale.days - scale.days_ahead)
    days = (start + timedelta(days=i) for i in range(scale.days))
    return [d for d in days if d.weekday() < 5]


def slot_start(day: date, slot: int) -> datetime:
    return datetime.combine(day, time(FIRST_SLOT_HOUR + slot), tzinfo=UTC)


def generate(
    scale: Scale,
    anchor: date,
    password_hash: str,
    encrypt: Callable[[str], str] = lambda s: s,
) -> DataSet:
    """Every row of the data set; `encrypt` seals admins' TOTP secrets as the app stores them."""
    rng = random.Random(scale.seed)
    data = DataSet(anchor=anchor)
    anchor_at = datetime.combine(anchor, time(0), tzinfo=UTC)
    founded = anchor_at - timedelta(days=400)
    days = booked_days(scale, anchor)
    for k in range(scale.clinics):
        clinic_id = _uuid(rng)
        currency = _CURRENCIES[k % len(_CURRENCIES)]
        city = _CITIES[k % len(_CITIES)]
        slug = f"{city.lower()}-fertility-{k:02d}"
        data.clinics.append(
            (
                clinic_id,
                f"{city} Fertility Centre {k:02d}",
                slug,
                _ZONES[k % len(_ZONES)],
                currency,
                49_900,
                founded,
            )
        )
        domain = f"{slug}.bench"

        def user(
            role: str,
            email: str,
            name: str,
            totp: str | None = None,
            clinic_id: uuid.UUID = clinic_id,
        ) -> Account:
            uid = _uuid(rng)
            data.users.append(
                (
                    uid,
                    clinic_id,
                    email,
                    name,
                    password_hash,
                    role,
                    True,
                    0,
                    founded,
                    founded,
                    encrypt(totp) if totp else None,
                    founded if totp else None,
                )
            )
            return Account(uid, clinic_id, email, role, totp)

        def name() -> str:
            return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"

        # Admins enrol in 2FA, as production requires of them.
        data.admins.append(user("clinic_admin", f"admin@{domain}", name(), _base32(rng)))
        counselors = [
            user("counselor", f"counselor{c:02d}@{domain}", name())
            for c in range(scale.counselors_per_clinic)
        ]
        data.counselors.extend(counselors)
        patients: list[uuid.UUID] = []
        for i in range(scale.patients_per_clinic):
            pid = _uuid(rng)
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            email = f"patient{i:04d}@{domain}"
            login: uuid.UUID | None = None
            if rng.random() < scale.patient_user_share:
                account = user("patient", email, f"{first} {last}")
                data.patient_users.append(account)
                login = account.user_id
            born = date(1978, 1, 1) + timedelta(days=rng.randrange(20 * 365))
            joined = founded + timedelta(days=rng.randrange(300))
            data.patients.append(
                (
                    clinic_id,
                    pid,
                    first,
                    last,
                    born,
                    email,
                    f"+1555{rng.randrange(10**7):07d}",
                    rng.random() < 0.03,
                    login,
                    joined,
                    joined,
                )
            )
            patients.append(pid)
        _book(
            rng,
            data,
            scale,
            clinic_id,
            currency,
            [c.user_id for c in counselors],
            patients,
            days,
            anchor_at,
        )
    return data


def _book(
    rng: random.Random,
    data: DataSet,
    scale: Scale,
    clinic_id: uuid.UUID,
    currency: str,
    counselors: list[uuid.UUID],
    patients: list[uuid.UUID],
    days: list[date],
    anchor_at: datetime,
) -> None:
    order = patients[:]
    rng.shuffle(order)  # who meets whom, and when, looks random, yet never clashes
    cpc, ppc = len(counselors), len(patients)
    for d, day in enumerate(days):
        for s in range(scale.slots_per_day):
            start = slot_start(day, s)
            for c, counselor in enumerate(counselors):
                # Distinct patients per (day, slot): a rotation of consecutive indices.
                patient = order[((d * scale.slots_per_day + s) * cpc + (c + d) % cpc) % ppc]
                roll = rng.random()
                if start < anchor_at:
                    status = (
                        "completed" if roll < 0.85 else ("no_show" if roll < 0.92 else "cancelled")
                    )
                else:
                    status = "scheduled" if roll < 0.92 else "cancelled"
                created = start - timedelta(days=1 + rng.randrange(30), minutes=rng.randrange(600))
                updated = (
                    start + timedelta(minutes=SESSION_MINUTES) if status != "scheduled" else created
                )
                data.sessions.append(
                    (
                        clinic_id,
                        _uuid(rng),
                        patient,
                        counselor,
                        start,
                        start + timedelta(minutes=SESSION_MINUTES),
                        SESSION_MINUTES,
                        rng.choice(_MODALITIES),
                        status,
                        rng.choice(_FEES),
                        currency,
                        "patient request" if status == "cancelled" else None,
                        created,
                        min(updated, anchor_at),
                    )
                )


def check_invariants(data: DataSet, scale: Scale) -> None:
    """Raise AssertionError if counts are off or anyone is double-booked."""
    assert len(data.clinics) == scale.clinics
    assert len(data.counselors) == scale.counselors
    assert len(data.patients) == scale.patients
    weekdays = len(booked_days(scale, data.anchor))
    assert len(data.sessions) == scale.counselors * weekdays * scale.slots_per_day
    ids = [s[1] for s in data.sessions]
    assert len(set(ids)) == len(ids), "duplicate session id"
    emails = [u[2] for u in data.users]
    assert len(set(emails)) == len(emails), "duplicate email"
    busy: set[tuple[object, object]] = set()
    for s in data.sessions:
        for who in (s[3], s[2]):  # counselor, then patient
            key = (who, s[4])
            assert key not in busy, f"double booking of {who} at {s[4]}"
            busy.add(key)
    patient_clinic = {p[1]: p[0] for p in data.patients}
    user_clinic = {u[0]: u[1] for u in data.users}
    for s in data.sessions:  # composite foreign keys hold
        assert patient_clinic[s[2]] == s[0] and user_clinic[s[3]] == s[0]
