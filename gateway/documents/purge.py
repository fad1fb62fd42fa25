"""The purge job: deleted documents past DOCUMENT_RETENTION_DAYS lose object and row.

Run by `santana documents purge` and every PURGE_INTERVAL by the worker (and by
the in-process worker in development). The object is deleted first, then the row
with an audit event in the same transaction; a crash in between leaves a row that
the next run purges again (deleting a missing object is not an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.documents.models import PatientDocument
from gateway.documents.storage import store_named
from gateway.integrations.errors import IntegrationError
from gateway.integrations.hub import IntegrationHub
from gateway.services import audit

log = logging.getLogger("santana.documents")

PURGE_INTERVAL_SECONDS = 3600.0
BATCH = 100


@dataclass
class PurgeReport:
    purged: int = 0
    failed: int = 0


async def purge_due(hub: IntegrationHub, now: datetime | None = None) -> PurgeReport:
    now = now or utcnow()
    report = PurgeReport()
    async with hub.database.session(TenantScope.cross_clinic()) as db:
        due = list(
            await db.scalars(
                select(PatientDocument)
                .where(PatientDocument.purge_after.is_not(None), PatientDocument.purge_after <= now)
                .order_by(PatientDocument.purge_after)
                .limit(BATCH)
            )
        )
    for document in due:
        try:
            await _purge(hub, document)
            report.purged += 1
        except IntegrationError as exc:
            report.failed += 1
            log.warning("purge of document %s failed: %s", document.id, exc.code)
    return report


async def _purge(hub: IntegrationHub, document: PatientDocument) -> None:
    scope = TenantScope.clinic(document.clinic_id)
    async with hub.database.session(scope) as db:
        store = await store_named(hub, db, document.clinic_id, document.storage_plugin)
    await store.delete(document.object_key)
    async with hub.database.transaction(scope) as db:
        await db.execute(
            delete(PatientDocument).where(
                PatientDocument.clinic_id == document.clinic_id,
                PatientDocument.id == document.id,
            )
        )
        audit.record(
            db,
            "document.purge",
            clinic_id=document.clinic_id,
            actor_user_id=None,
            target_type="document",
            target_id=document.id,
            details={"kind": document.kind},
            patient_id=document.patient_id,
        )


async def run_forever(hub: IntegrationHub, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            report = await purge_due(hub)
            if report.purged or report.failed:
                log.info("documents purged: %d, failed: %d", report.purged, report.failed)
        except Exception:  # a failed run is retried at the next interval
            log.exception("document purge run failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PURGE_INTERVAL_SECONDS)
