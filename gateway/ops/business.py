"""Business metrics for platform admins: clinics, patients, sessions, payments, MRR, adoption.

The payment and integration tables belong to other layers and may not exist
yet (or may differ): they are looked up by name and read only if they have the
columns used here, so this works before and after those layers land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, distinct, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.engine import Database
from gateway.db.models import Clinic, CounselingSession, Patient, SessionStatus
from gateway.db.tenancy import TenantScope
from gateway.services import audit
from gateway.settings import Settings

ACTIVE_DAYS = 30  # a clinic with a session in the last 30 days is active
# Payment statuses that mean money moved (Stripe: succeeded; Razorpay: captured).
PAID_STATUSES = ("succeeded", "paid", "captured", "completed")


@dataclass(frozen=True)
class Amount:
    currency: str
    amount: int  # minor units


@dataclass(frozen=True)
class Adoption:
    kind: str
    plugin: str | None  # None: any plugin of the kind
    clinics: int
    share: float


@dataclass
class BusinessMetrics:
    total_clinics: int = 0
    active_clinics: int = 0
    total_patients: int = 0
    sessions_this_month: int = 0
    payment_volume_this_month: list[Amount] = field(default_factory=list)
    mrr: list[Amount] = field(default_factory=list)
    feature_adoption: list[Adoption] = field(default_factory=list)
    payments_tracked: bool = False  # false until a payments table exists
    integrations_tracked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "totalClinics": self.total_clinics,
            "activeClinics": self.active_clinics,
            "totalPatients": self.total_patients,
            "sessionsThisMonth": self.sessions_this_month,
            "paymentVolumeThisMonth": [a.__dict__ for a in self.payment_volume_this_month],
            "mrr": [a.__dict__ for a in self.mrr],
            "featureAdoption": [a.__dict__ for a in self.feature_adoption],
            "paymentsTracked": self.payments_tracked,
            "integrationsTracked": self.integrations_tracked,
        }


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def business_metrics(database: Database, now: datetime | None = None) -> BusinessMetrics:
    now = now or datetime.now(UTC)
    start = month_start(now)
    end = (start + timedelta(days=32)).replace(day=1)
    out = BusinessMetrics()
    # Platform-level read across clinics (RLS admits it only with the platform scope).
    async with database.transaction(TenantScope.cross_clinic()) as db:
        tables = await _tables(db)
        out.total_clinics = await db.scalar(select(func.count()).select_from(Clinic)) or 0
        out.active_clinics = (
            await db.scalar(
                select(func.count(distinct(CounselingSession.clinic_id))).where(
                    CounselingSession.starts_at >= now - timedelta(days=ACTIVE_DAYS),
                    CounselingSession.starts_at <= now,
                    CounselingSession.status != SessionStatus.CANCELLED,
                )
            )
            or 0
        )
        out.total_patients = (
            await db.scalar(
                select(func.count()).select_from(Patient).where(Patient.archived.is_(False))
            )
            or 0
        )
        out.sessions_this_month = (
            await db.scalar(
                select(func.count())
                .select_from(CounselingSession)
                .where(
                    CounselingSession.starts_at >= start,
                    CounselingSession.starts_at < end,
                    CounselingSession.status != SessionStatus.CANCELLED,
                )
            )
            or 0
        )
        if "monthly_plan_fee" in tables.get("clinics", set()):
            rows = await db.execute(
                select(Clinic.currency, func.sum(Clinic.monthly_plan_fee))
                .where(Clinic.monthly_plan_fee > 0)
                .group_by(Clinic.currency)
                .order_by(Clinic.currency)
            )
            out.mrr = [Amount(c, int(total or 0)) for c, total in rows]
        if {"amount", "currency", "created_at"} <= tables.get("payments", set()):
            out.payments_tracked = True
            out.payment_volume_this_month = await _payment_volume(
                db, tables["payments"], start, end
            )
        if {"clinic_id", "kind", "plugin", "enabled"} <= tables.get("integrations", set()):
            out.integrations_tracked = True
            out.feature_adoption = await _adoption(db, out.total_clinics)
    return out


async def _tables(db: AsyncSession) -> dict[str, set[str]]:
    conn = await db.connection()

    def read(sync_conn: Any) -> dict[str, set[str]]:
        insp = inspect(sync_conn)
        wanted = {"clinics", "payments", "integrations"} & set(insp.get_table_names())
        return {name: {c["name"] for c in insp.get_columns(name)} for name in wanted}

    return await conn.run_sync(read)


async def _reflect(db: AsyncSession, name: str) -> Table:
    conn = await db.connection()
    return await conn.run_sync(lambda sync_conn: Table(name, MetaData(), autoload_with=sync_conn))


def _bound(value: datetime, dialect: str) -> datetime:
    # Reflected SQLite columns store naive UTC text (like UTCDateTime does).
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


async def _payment_volume(
    db: AsyncSession, columns: set[str], start: datetime, end: datetime
) -> list[Amount]:
    payments = await _reflect(db, "payments")
    dialect = (await db.connection()).dialect.name
    currency = func.upper(payments.c.currency)  # "usd" and "USD" are one currency
    query = (
        select(currency, func.sum(payments.c.amount))
        .where(
            payments.c.created_at >= _bound(start, dialect),
            payments.c.created_at < _bound(end, dialect),
        )
        .group_by(currency)
        .order_by(currency)
    )
    if "status" in columns:
        query = query.where(payments.c.status.in_(PAID_STATUSES))
    return [Amount(str(c), int(total or 0)) for c, total in await db.execute(query)]


async def _adoption(db: AsyncSession, total_clinics: int) -> list[Adoption]:
    integrations = await _reflect(db, "integrations")
    enabled = integrations.c.enabled.is_(True)
    clinics = func.count(distinct(integrations.c.clinic_id))
    by_kind = await db.execute(
        select(integrations.c.kind, clinics)
        .where(enabled)
        .group_by(integrations.c.kind)
        .order_by(integrations.c.kind)
    )
    by_plugin = await db.execute(
        select(integrations.c.kind, integrations.c.plugin, clinics)
        .where(enabled)
        .group_by(integrations.c.kind, integrations.c.plugin)
        .order_by(integrations.c.kind, integrations.c.plugin)
    )

    def share(n: int) -> float:
        return round(n / total_clinics, 4) if total_clinics else 0.0

    out = [Adoption(kind, None, n, share(n)) for kind, n in by_kind]
    out += [Adoption(kind, plugin, n, share(n)) for kind, plugin, n in by_plugin]
    return sorted(out, key=lambda a: (a.kind, a.plugin or ""))


async def set_plan_fee(settings: Settings, slug: str, amount: int) -> str:
    """Set a clinic's monthly plan fee (minor units); returns the clinic's currency. Audited."""
    database = Database(settings.database_url)
    try:
        async with database.transaction(TenantScope.cross_clinic()) as db:
            clinic = await db.scalar(select(Clinic).where(Clinic.slug == slug))
            if clinic is None:
                raise LookupError(f"no clinic with slug {slug!r}")
            before, clinic.monthly_plan_fee = clinic.monthly_plan_fee, amount
            audit.record(
                db,
                "clinic.plan_fee_changed",
                clinic_id=clinic.id,
                actor_user_id=None,
                target_type="clinic",
                target_id=clinic.id,
                details={"from": before, "to": amount, "via": "cli"},
            )
            return clinic.currency
    finally:
        await database.dispose()
