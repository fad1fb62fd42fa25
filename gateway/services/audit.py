"""The audit log: one row per security- or data-relevant action."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import AuditEvent

log = logging.getLogger("santana.audit")


def record(
    db: AsyncSession,
    action: str,
    *,
    clinic_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add an audit row to `db`'s transaction: it commits (or not) with the change it describes.

    `details` must hold identifiers and field names only, never PHI or secrets.
    """
    event = AuditEvent(
        clinic_id=clinic_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        outcome=outcome,
        details=details or {},
        request_id=request_id,
        ip=ip,
    )
    db.add(event)
    return event
