"""The session reminder sweep that `santana worker` (and the in-process worker) runs.

A scheduled session starting within EMAIL_REMINDER_LEAD_HOURS gets one reminder,
unless it was booked or moved inside that window (its confirmation just said when).
The reminder's dedupe key names the session and its start time, and the database
holds it unique per clinic: two workers sweeping at once queue it once, and a
rescheduled session is reminded again for its new time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.models import CounselingSession, SessionStatus
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.events import EventContext
from gateway.notifications.listeners import session_context, session_facts
from gateway.notifications.models import EmailMessageRecord
from gateway.notifications.render import Notification
from gateway.notifications.service import notify
from gateway.settings import Settings

log = logging.getLogger("santana.reminders")

_CONFIRMATIONS = (Notification.SESSION_BOOKED.value, Notification.SESSION_RESCHEDULED.value)


def reminder_key(session: CounselingSession) -> str:
    return f"reminder:{session.id}:{session.starts_at.isoformat()}"


async def sweep(database: Database, settings: Settings, cipher: DataCipher) -> int:
    """Queue the reminders that are due now; returns how many were queued."""
    now = utcnow()
    horizon = now + timedelta(hours=settings.email_reminder_lead_hours)
    S = CounselingSession
    async with database.session(TenantScope.cross_clinic()) as db:
        due = [
            (row.clinic_id, row.id)
            for row in await db.execute(
                select(S.clinic_id, S.id).where(
                    S.status == SessionStatus.SCHEDULED, S.starts_at > now, S.starts_at <= horizon
                )
            )
        ]
    queued = 0
    for clinic_id, session_id in due:
        try:
            if await _remind(database, settings, cipher, clinic_id, session_id):
                queued += 1
        except IntegrityError:
            pass  # another worker queued this reminder first
    return queued


async def _remind(
    database: Database,
    settings: Settings,
    cipher: DataCipher,
    clinic_id: uuid.UUID,
    session_id: uuid.UUID,
) -> bool:
    async with database.transaction(TenantScope.clinic(clinic_id)) as db:
        ectx = EventContext(db=db, cipher=cipher, settings=settings)
        facts = await session_facts(ectx, clinic_id, session_id)
        if facts is None:
            return False
        patient, session, clinic = facts
        key = reminder_key(session)
        M = EmailMessageRecord
        if await db.scalar(select(M.id).where(M.clinic_id == clinic_id, M.dedupe_key == key)):
            return False
        # Booked or moved inside the window: that confirmation already told them when.
        lead = timedelta(hours=settings.email_reminder_lead_hours)
        just_told = await db.scalar(
            select(M.id).where(
                M.clinic_id == clinic_id,
                M.session_id == session.id,
                M.notification.in_(_CONFIRMATIONS),
                M.created_at >= session.starts_at - lead,
            )
        )
        if just_told is not None:
            return False
        row = await notify(
            ectx,
            clinic_id,
            Notification.SESSION_REMINDER,
            to=patient.email,
            first_name=patient.first_name,
            context=session_context(session, clinic),
            user_id=patient.user_id,
            patient_id=patient.id,
            session_id=session.id,
            dedupe_key=key,
        )
        await db.flush()  # the unique key decides a race here, before anything commits
        return row is not None


async def run_forever(
    database: Database, settings: Settings, cipher: DataCipher, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            queued = await sweep(database, settings, cipher)
            if queued:
                log.info("queued %d session reminders", queued)
        except Exception as exc:  # database briefly away: keep sweeping
            log.warning("reminder sweep failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.email_reminder_poll_seconds)
