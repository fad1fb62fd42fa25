"""Demo data for `make run`: two clinics, staff of every role, ~50 patients, sessions.

Deterministic (seeded) and idempotent: running it twice changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

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
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.models import Integration

DEMO_PASSWORD = "santana-demo-pass"
PLATFORM_ADMIN_EMAIL = "admin@santana.test"

_FIRST = [
    "Ava",
    "Maya",
    "Priya",
    "Sofia",
    "Leila",
    "Hannah",
    "Chloe",
    "Aisha",
    "Noor",
    "Emma",
    "Olivia",
    "Zara",
    "Ines",
    "Mei",
    "Ana",
    "Ravi",
    "Daniel",
    "Omar",
    "Lucas",
    "Arjun",
]
_LAST = [
    "Patel",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Kim",
    "Haddad",
    "Silva",
    "Cohen",
    "Murphy",
    "Sharma",
    "Tanaka",
    "Novak",
    "Dubois",
    "Mensah",
    "Iyer",
    "Lopez",
    "Fischer",
    "Ali",
    "Walsh",
]


@dataclass(frozen=True)
class DemoClinic:
    slug: str
    name: str
    timezone: str
    currency: str
    fee: int
    domain: str


DEMO_CLINICS = [
    DemoClinic(
        "bright-futures",
        "Bright Futures Fertility",
        "America/New_York",
        "USD",
        15000,
        "brightfutures.test",
    ),
    DemoClinic("lotus-ivf", "Lotus IVF Centre", "Asia/Kolkata", "INR", 250000, "lotusivf.test"),
]


async def seed_demo(
    database: Database, cipher: DataCipher, *, patients_per_clinic: int = 25
) -> bool:
    """Load the demo data set. Returns False when it was already there."""
    rng = random.Random(20261126)
    password_hash = hash_password(DEMO_PASSWORD)
    async with database.transaction(TenantScope.cross_clinic()) as db:
        if await db.scalar(select(User.id).where(User.email == PLATFORM_ADMIN_EMAIL)):
            return False
        db.add(
            User(
                email=PLATFORM_ADMIN_EMAIL,
                full_name="Platform Admin",
                role=Role.PLATFORM_ADMIN,
                password_hash=password_hash,
                clinic_id=None,
            )
        )
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for spec in DEMO_CLINICS:
            clinic = Clinic(
                name=spec.name, slug=spec.slug, timezone=spec.timezone, currency=spec.currency
            )
            db.add(clinic)
            await db.flush()

            def staff(
                local: str, name: str, role: Role, clinic: Clinic = clinic, spec: DemoClinic = spec
            ) -> User:
                user = User(
                    email=f"{local}@{spec.domain}",
                    full_name=name,
                    role=role,
                    password_hash=password_hash,
                    clinic_id=clinic.id,
                )
                db.add(user)
                return user

            staff("admin", f"{spec.name} Admin", Role.CLINIC_ADMIN)
            counselors = [
                staff("counselor1", "Dr. Rivera", Role.COUNSELOR),
                staff("counselor2", "Dr. Chen", Role.COUNSELOR),
            ]
            patient_user = staff("patient", "Sam Demo", Role.PATIENT)
            await db.flush()

            patients = []
            for i in range(patients_per_clinic):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                is_demo_login = i == 0
                patient = Patient(
                    clinic_id=clinic.id,
                    first_name="Sam" if is_demo_login else first,
                    last_name="Demo" if is_demo_login else last,
                    date_of_birth=date(
                        rng.randint(1980, 1998), rng.randint(1, 12), rng.randint(1, 28)
                    ),
                    email=patient_user.email
                    if is_demo_login
                    else f"{first}.{last}.{i}@example.test".lower(),
                    phone=f"+1 555 01{i:02d}",
                    user_id=patient_user.id if is_demo_login else None,
                    archived=i == patients_per_clinic - 1,
                )
                db.add(patient)
                patients.append(patient)
            await db.flush()

            # Each counselor gets one slot per working hour; a slot is used at most once.
            used: set[tuple[int, datetime]] = set()
            for patient in patients:
                for _ in range(rng.randint(2, 6)):
                    c = rng.randrange(len(counselors))
                    day = rng.randint(-60, 30)
                    start = (now + timedelta(days=day)).replace(hour=rng.randint(13, 21))
                    if (c, start) in used or abs((start - now).total_seconds()) < 3600:
                        continue
                    used.add((c, start))
                    past = start < now
                    status = SessionStatus.SCHEDULED
                    if past:
                        status = rng.choices(
                            [
                                SessionStatus.COMPLETED,
                                SessionStatus.CANCELLED,
                                SessionStatus.NO_SHOW,
                            ],
                            weights=[8, 1, 1],
                        )[0]
                    notes = None
                    if status is SessionStatus.COMPLETED:
                        notes = cipher.encrypt("Discussed treatment options and coping strategies.")
                    db.add(
                        CounselingSession(
                            clinic_id=clinic.id,
                            patient_id=patient.id,
                            counselor_id=counselors[c].id,
                            starts_at=start,
                            ends_at=start + timedelta(minutes=50),
                            duration_minutes=50,
                            modality=rng.choice(list(Modality)),
                            status=status,
                            fee_amount=spec.fee,
                            currency=spec.currency,
                            notes_encrypted=notes,
                        )
                    )
    return True


# The built-in plugins each demo clinic uses. A plugin that offers `demo_config(fakes_url)`
# returns (config, secrets) pointing at its own provider fake (PROVIDER_FAKES).
DEMO_PLUGINS = {
    "bright-futures": ["pay_stripe", "mail_sendgrid", "emr_epic"],
    "lotus-ivf": ["pay_razorpay", "mail_mailgun", "emr_cerner"],
}


async def seed_demo_integrations(hub: IntegrationHub, fakes_url: str) -> list[str]:
    """Enable the demo clinics' plugins against the provider fakes (idempotent).

    Written directly, without `validate_config`: the fakes answer only once the gateway
    serves them. Plugins that are not installed, or whose kind the clinic already has
    enabled, are left alone. Returns "clinic/plugin" for each integration it added.
    """
    added = []
    async with hub.database.transaction(TenantScope.cross_clinic()) as db:
        for slug, names in DEMO_PLUGINS.items():
            clinic_id = await db.scalar(select(Clinic.id).where(Clinic.slug == slug))
            if clinic_id is None:
                continue
            existing = {
                (row.plugin, row.kind, row.enabled)
                for row in await db.scalars(
                    select(Integration).where(Integration.clinic_id == clinic_id)
                )
            }
            for name in names:
                plugin = hub.manager.get(name)
                demo_config = getattr(plugin.obj, "demo_config", None) if plugin else None
                if plugin is None or demo_config is None:
                    continue
                kind = plugin.declaration.kind.value
                if any(p == name or (k == kind and on) for p, k, on in existing):
                    continue
                config, secrets = demo_config(fakes_url)
                config, secrets = hub.store.split_input(plugin.declaration, config, secrets)
                hub.store.build(plugin.declaration, config, secrets)  # refuse a bad demo config
                db.add(
                    Integration(
                        clinic_id=clinic_id,
                        plugin=name,
                        kind=kind,
                        enabled=True,
                        config=config,
                        secrets_encrypted=hub.store.encrypt(secrets),
                    )
                )
                existing.add((name, kind, True))
                added.append(f"{slug}/{name}")
    return added


def demo_logins() -> list[tuple[str, str]]:
    rows = [("platform_admin", PLATFORM_ADMIN_EMAIL)]
    for spec in DEMO_CLINICS:
        rows += [
            ("clinic_admin", f"admin@{spec.domain}"),
            ("counselor", f"counselor1@{spec.domain}"),
            ("counselor", f"counselor2@{spec.domain}"),
            ("patient", f"patient@{spec.domain}"),
        ]
    return rows
