"""Operations fields for platform admins: the alerts firing now, and the business metrics."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.errors import Forbidden
from gateway.ops.alerts import Alert as AlertModel
from gateway.ops.business import business_metrics
from schema.context import Info
from schema.types import Money


@strawberry.type(description="An alert from the operations manual's rules, firing now")
class Alert:
    key: str = strawberry.field(description="The rule: system_down, error_rate, db_connections, …")
    severity: str = strawberry.field(description="critical | warning")
    priority: str = strawberry.field(description="Incident priority P0 (immediate) … P3 (24 hours)")
    title: str
    message: str
    value: float | None
    threshold: float | None
    since: datetime | None

    @classmethod
    def from_model(cls, a: AlertModel) -> Alert:
        return cls(
            key=a.key,
            severity=a.severity,
            priority=a.priority,
            title=a.title,
            message=a.message,
            value=a.value,
            threshold=a.threshold,
            since=a.since,
        )


@strawberry.type(description="Share of clinics using an integration kind, or one plugin of it")
class FeatureAdoption:
    kind: str
    plugin: str | None = strawberry.field(description="Null: any plugin of this kind")
    clinics: int
    share: float = strawberry.field(description="clinics / all clinics, 0…1")


@strawberry.type
class BusinessMetrics:
    total_clinics: int
    active_clinics: int = strawberry.field(description="Clinics with a session in the last 30 days")
    total_patients: int = strawberry.field(description="Patients not archived")
    sessions_this_month: int = strawberry.field(
        description="Sessions starting this calendar month (UTC), not cancelled"
    )
    payment_volume_this_month: list[Money] = strawberry.field(
        description="Paid this month, per currency"
    )
    mrr: list[Money] = strawberry.field(
        description="Monthly recurring revenue: clinics' plan fees, per currency"
    )
    feature_adoption: list[FeatureAdoption]


def _require_platform_admin(info: Info) -> None:
    principal = info.context.require_principal()
    if not principal.is_platform_admin:
        raise Forbidden("Operations data is for platform admins.")


@strawberry.type
class OpsQueries:
    @strawberry.field(description="Alerts firing now, most severe first (platform admins only)")
    async def alerts(self, info: Info) -> list[Alert]:
        _require_platform_admin(info)
        ops = info.context.request.app.state.ops
        return [Alert.from_model(a) for a in await ops.alerts.evaluate()]

    @strawberry.field(
        description="Clinics, patients, sessions, revenue and adoption (platform admins only)"
    )
    async def business_metrics(self, info: Info) -> BusinessMetrics:
        _require_platform_admin(info)
        m = await business_metrics(info.context.database)
        return BusinessMetrics(
            total_clinics=m.total_clinics,
            active_clinics=m.active_clinics,
            total_patients=m.total_patients,
            sessions_this_month=m.sessions_this_month,
            payment_volume_this_month=[
                Money(amount=a.amount, currency=a.currency) for a in m.payment_volume_this_month
            ],
            mrr=[Money(amount=a.amount, currency=a.currency) for a in m.mrr],
            feature_adoption=[
                FeatureAdoption(kind=f.kind, plugin=f.plugin, clinics=f.clinics, share=f.share)
                for f in m.feature_adoption
            ],
        )
