"""The Principal: who is calling. Built once per request; the only tenant identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.db.models import Role
from gateway.db.tenancy import TenantScope


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    clinic_id: uuid.UUID | None

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    def tenant_scope(self) -> TenantScope:
        # Platform admins work across clinics; everybody else inside their own.
        if self.is_platform_admin:
            return TenantScope.cross_clinic()
        assert self.clinic_id is not None, "non-platform users always belong to a clinic"
        return TenantScope.clinic(self.clinic_id)
