"""Sending a patient document to the clinic's EMR as a FHIR DocumentReference.

Only when the clinic's enabled EMR plugin implements the optional `push_document`
hook and the patient is linked to an EMR record. The push is queued through the
outbox in the request's transaction; when it is delivered, the EMR's id is kept
on the document.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.permissions import Action, require
from gateway.documents import crypto, service
from gateway.documents.models import PatientDocument
from gateway.documents.storage import store_named
from gateway.emr.links import emr_patient_id
from gateway.errors import ValidationFailed
from gateway.integrations.dispatch import require_hub
from gateway.integrations.errors import NotConfigured
from gateway.integrations.models import OutboxMessage
from gateway.integrations.outbox import on_delivered, queue
from gateway.integrations.types import DocumentPush, Kind, PushedDocument
from gateway.services import audit
from gateway.services.context import ServiceContext

HOOK = "push_document"


async def send_to_emr(ctx: ServiceContext, document_id: uuid.UUID) -> PatientDocument:
    principal = ctx.require_principal()
    require(principal, Action.PATIENT_WRITE)  # staff only: patients do not file into the EMR
    document = await service.get_document(ctx, document_id)
    hub = require_hub(ctx)
    row = await hub.enabled_row(ctx.db, document.clinic_id, Kind.EMR.value)
    if row is None:
        raise NotConfigured("No EMR integration is enabled for this clinic.", kind="emr")
    plugin = hub.manager.get(row.plugin)
    if plugin is None or HOOK not in plugin.hooks:
        label = plugin.declaration.label if plugin else row.plugin
        raise NotConfigured(f"{label} does not accept documents.", plugin=row.plugin)
    emr_id = await emr_patient_id(ctx.db, document.clinic_id, document.patient_id)
    if emr_id is None:
        raise ValidationFailed(
            "The patient is not linked to a record in the EMR; link the patient first.",
            field="id",
        )
    content = await _plaintext(ctx, document)
    push = DocumentPush(
        emr_patient_id=emr_id,
        reference=str(document.id),
        kind=document.kind,
        title=service.filename(ctx, document) or f"{document.kind.replace('_', ' ')} document",
        content_type=document.content_type,
        created_at=document.created_at,
        content_b64=base64.b64encode(content).decode(),
    )
    queue(ctx, document.clinic_id, Kind.EMR, HOOK, document=push)
    audit.record(
        ctx.db,
        "document.send_to_emr",
        clinic_id=document.clinic_id,
        actor_user_id=principal.user_id,
        target_type="document",
        target_id=document.id,
        details={"plugin": row.plugin, "kind": document.kind},
        request_id=ctx.request_id,
        ip=ctx.ip,
        patient_id=document.patient_id,
    )
    return document


async def _plaintext(ctx: ServiceContext, document: PatientDocument) -> bytes:
    # The contract carries the file inline (base64), so this one path holds it whole.
    store = await store_named(require_hub(ctx), ctx.db, document.clinic_id, document.storage_plugin)
    chunks = crypto.decrypt_stream(
        await store.open(document.object_key),
        crypto.unwrap_key(ctx.cipher, document.key_encrypted),
        bytes.fromhex(document.nonce_prefix),
        crypto.associated_data(document.clinic_id, document.id),
        document.chunk_size,
    )
    return b"".join([chunk async for chunk in chunks])


@on_delivered(HOOK)
async def _remember_emr_id(
    db: AsyncSession, message: OutboxMessage, args: dict[str, Any], result: Any
) -> None:
    if not isinstance(result, PushedDocument):
        return
    pushed: DocumentPush = args["document"]
    await db.execute(
        update(PatientDocument)
        .where(
            PatientDocument.clinic_id == message.clinic_id,
            PatientDocument.id == uuid.UUID(pushed.reference),
        )
        .values(emr_document_id=result.emr_document_id)
    )
