"""A small two-clinic world for tests, written straight to the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

from gateway.auth.passwords import hash_password
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.models import (
    Clinic,
    CounselingSession,
    Modality,
    Patient,
    Role,
    SessionStatus,
    User,
)
from gateway.db.tenancy import TenantScope
from gateway.settings import Settings

PASSWORD = "correct-horse-battery"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class ClinicWorld:
    clinic: Clinic
    admin: User
    counselor: User
    counselor2: User
    patient_user: User
    patients: list[Patient] = field(default_factory=list)
    sessions: list[CounselingSession] = field(default_factory=list)

    @property
    def own_patient(self) -> Patient:
        """The patient record linked to `patient_user`."""
        return self.patients[0]

    @property
    def past_session(self) -> CounselingSession:
        """Completed, held by `counselor`, for `own_patient`, with notes."""
        return self.sessions[0]

    @property
    def upcoming_session(self) -> CounselingSession:
        """Scheduled tomorrow, held by `counselor`, for `own_patient`."""
        return self.sessions[1]


@dataclass
class World:
    a: ClinicWorld
    b: ClinicWorld
    platform_admin: User


def tomorrow_at(hour: int) -> datetime:
    day = datetime.now(UTC) + timedelta(days=1)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


async def build_world(
    database: Database, settings: Settings, patients_per_clinic: int = 3
) -> World:
    cipher = DataCipher(settings.encryption_keys)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        admin = User(
            email="root@platform.test",
            full_name="Platform Admin",
            role=Role.PLATFORM_ADMIN,
            password_hash=password_hash(),
            clinic_id=None,
        )
        db.add(admin)
        worlds = []
        for tag in ("a", "b"):
            clinic = Clinic(
                name=f"Clinic {tag.upper()}", slug=f"clinic-{tag}", timezone="UTC", currency="USD"
            )
            db.add(clinic)
            await db.flush()

            def user(
                local: str, role: Role, name: str, clinic: Clinic = clinic, tag: str = tag
            ) -> User:
                row = User(
                    email=f"{local}@{tag}.test",
                    full_name=name,
                    role=role,
                    password_hash=password_hash(),
                    clinic_id=clinic.id,
                )
                db.add(row)
                return row

            cw = ClinicWorld(
                clinic=clinic,
                admin=user("admin", Role.CLINIC_ADMIN, f"Admin {tag}"),
                counselor=user("counselor", Role.COUNSELOR, f"Counselor {tag}"),
                counselor2=user("counselor2", Role.COUNSELOR, f"Second Counselor {tag}"),
                patient_user=user("patient", Role.PATIENT, f"Patient {tag}"),
            )
            await db.flush()
            for i in range(patients_per_clinic):
                p = Patient(
                    clinic_id=clinic.id,
                    first_name=f"Pat{i}",
                    last_name=f"Clinic{tag.upper()}",
                    date_of_birth=date(1990, 1, 1 + i),
                    email=f"pat{i}@{tag}.example",
                    user_id=cw.patient_user.id if i == 0 else None,
                    archived=False,
                )
                db.add(p)
                cw.patients.append(p)
            await db.flush()
            past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
            upcoming = tomorrow_at(10)
            for start, status, notes in (
                (past, SessionStatus.COMPLETED, cipher.encrypt(f"private notes {tag}")),
                (upcoming, SessionStatus.SCHEDULED, None),
            ):
                s = CounselingSession(
                    clinic_id=clinic.id,
                    patient_id=cw.own_patient.id,
                    counselor_id=cw.counselor.id,
                    starts_at=start,
                    ends_at=start + timedelta(minutes=50),
                    duration_minutes=50,
                    modality=Modality.VIDEO,
                    status=status,
                    fee_amount=12000,
                    currency="USD",
                    notes_encrypted=notes,
                )
                db.add(s)
                cw.sessions.append(s)
            worlds.append(cw)
    return World(a=worlds[0], b=worlds[1], platform_admin=admin)
