"""Patient documents: upload, list, download, delete, with permissions and audit.

Who may do what (gateway.auth.permissions): patients read and upload their own
documents; counselors and clinic admins read, upload and delete their clinic's.
Platform admins read no clinical data. Every upload, download and delete is an
audit event, and so is a refused download (in the owning clinic's log).

An upload streams: each piece of the request body is hashed, sniffed (the first
bytes), encrypted and written to a spool file on disk; only a finished, valid
upload is handed to the storage plugin and recorded. Any failure on the way
removes the spool file and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, select

from gateway.auth.permissions import Action, patient_filter, require
from gateway.db.models import CounselingSession, Patient
from gateway.db.tenancy import TenantScope
from gateway.db.types import utcnow
from gateway.documents import crypto
from gateway.documents.models import DocumentKind, PatientDocument
from gateway.documents.sniffing import SNIFF_BYTES, claimed_type, sniff
from gateway.documents.storage import store_for_upload, store_named
from gateway.errors import NotFound, ValidationFailed
from gateway.integrations.dispatch import require_hub
from gateway.integrations.errors import ProviderRejected
from gateway.security.errors import LimitExceeded
from gateway.services import audit
from gateway.services.context import ServiceContext

MAX_FILENAME = 200


@dataclass(frozen=True)
class UploadRequest:
    patient_id: uuid.UUID
    kind: DocumentKind
    session_id: uuid.UUID | None = None
    filename: str | None = None
    declared_size: int | None = None  # Content-Length, when the client sent one


@dataclass(frozen=True)
class Download:
    document: PatientDocument
    chunks: AsyncIterator[bytes]  # the decrypted file


@dataclass(frozen=True)
class _Spooled:
    path: str
    size: int
    sha256: str
    content_type: str


def too_large(limit: int) -> LimitExceeded:
    return LimitExceeded(
        "DOCUMENT_TOO_LARGE",
        f"The file is larger than the {limit} bytes a document may have.",
        limit="document_size",
        maxBytes=limit,
    )


def object_key(clinic_id: uuid.UUID) -> str:
    """Random, no PHI; the clinic prefix keeps a clinic's objects together for operators."""
    token = secrets.token_hex(16)
    return f"{clinic_id}/{token[:2]}/{token}"


# --- upload ------------------------------------------------------------------------------------


async def upload(
    ctx: ServiceContext, request: UploadRequest, body: AsyncIterable[bytes]
) -> PatientDocument:
    principal = ctx.require_principal()
    require(principal, Action.DOCUMENT_UPLOAD)
    limit = ctx.settings.document_max_bytes
    if request.declared_size is not None and request.declared_size > limit:
        raise too_large(limit)
    if request.filename is not None and len(request.filename) > MAX_FILENAME:
        raise ValidationFailed(
            f"The file name may have at most {MAX_FILENAME} characters.", field="filename"
        )
    patient = await _patient(ctx, request.patient_id)
    if request.session_id is not None:
        await _check_session(ctx, patient, request.session_id)
    clinic_id, patient_id = patient.clinic_id, patient.id
    store = await store_for_upload(require_hub(ctx), ctx.db, clinic_id)
    # Nothing is written until the file is in: give the connection back meanwhile.
    await ctx.db.rollback()

    document_id = uuid.uuid4()
    key, prefix = crypto.new_object_key(), crypto.new_nonce_prefix()
    encryptor = crypto.ChunkEncryptor(key, prefix, crypto.associated_data(clinic_id, document_id))
    spooled = await _spool(body, encryptor, limit, request.filename)
    name = object_key(clinic_id)
    try:
        stored = await store.put(name, spooled.path)
        if stored.size != crypto.encrypted_size(spooled.size):
            raise ProviderRejected(f"The {store.plugin} store kept a different number of bytes.")
    except BaseException:
        with contextlib.suppress(Exception):  # a partly written object must not stay behind
            await store.delete(name)
        raise
    finally:
        await asyncio.to_thread(_remove, spooled.path)

    document = PatientDocument(
        clinic_id=clinic_id,
        id=document_id,
        patient_id=patient_id,
        session_id=request.session_id,
        kind=request.kind.value,
        content_type=spooled.content_type,
        size=spooled.size,
        sha256=spooled.sha256,
        filename_encrypted=ctx.cipher.encrypt(request.filename) if request.filename else None,
        storage_plugin=store.plugin,
        object_key=name,
        stored_size=stored.size,
        key_encrypted=crypto.wrap_key(ctx.cipher, key),
        cipher=crypto.CIPHER_NAME,
        nonce_prefix=prefix.hex(),
        chunk_size=crypto.CHUNK_SIZE,
        uploaded_by=principal.user_id,
        created_at=utcnow(),
    )
    ctx.db.add(document)
    _audit(ctx, "document.upload", document, kind=document.kind, size=document.size)
    try:
        await ctx.db.commit()
    except BaseException:
        await ctx.db.rollback()
        with contextlib.suppress(Exception):  # no orphan object for a row that never was
            await store.delete(name)
        raise
    return document


async def _spool(
    body: AsyncIterable[bytes],
    encryptor: crypto.ChunkEncryptor,
    limit: int,
    filename: str | None,
) -> _Spooled:
    """Hash, check and encrypt the body into a temporary file; remove it on any failure."""
    fd, path = tempfile.mkstemp(prefix="santana-upload-", suffix=".part")
    handle = os.fdopen(fd, "wb")
    digest, size, head, content_type = hashlib.sha256(), 0, b"", None
    try:
        async for data in body:
            if not data:
                continue
            size += len(data)
            if size > limit:
                raise too_large(limit)
            digest.update(data)
            if content_type is None:
                head += data[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    content_type = _check_type(head, filename)
            sealed = b"".join(encryptor.feed(data))
            if sealed:
                await asyncio.to_thread(handle.write, sealed)
        if size == 0:
            raise ValidationFailed("The file is empty.", field="file", reason="empty")
        if content_type is None:
            content_type = _check_type(head, filename)
        await asyncio.to_thread(handle.write, encryptor.finish())
        await asyncio.to_thread(handle.close)
    except BaseException:  # includes a client that went away mid-upload
        handle.close()
        await asyncio.to_thread(_remove, path)
        raise
    return _Spooled(path, size, digest.hexdigest(), content_type)


def _check_type(head: bytes, filename: str | None) -> str:
    actual = sniff(head)
    if actual is None:
        raise ValidationFailed(
            "The file is not a PDF, PNG or JPEG (judged by its content, not its name).",
            field="file",
            reason="type",
        )
    claimed = claimed_type(filename)
    if claimed is not None and claimed != actual:
        raise ValidationFailed(
            f"The file's name says {claimed} but its content is {actual}.",
            field="file",
            reason="type_mismatch",
        )
    return actual


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _patient(ctx: ServiceContext, patient_id: uuid.UUID) -> Patient:
    principal = ctx.require_principal()
    patient = await ctx.db.scalar(
        select(Patient).where(Patient.id == patient_id, patient_filter(principal))
    )
    if patient is None:
        raise NotFound("Patient not found.", field="patientId")
    return patient


async def _check_session(ctx: ServiceContext, patient: Patient, session_id: uuid.UUID) -> None:
    found = await ctx.db.scalar(
        select(CounselingSession.id).where(
            CounselingSession.clinic_id == patient.clinic_id,
            CounselingSession.id == session_id,
            CounselingSession.patient_id == patient.id,
        )
    )
    if found is None:
        raise NotFound("No session of this patient has that id.", field="sessionId")


# --- reads ---------------------------------------------------------------------------------------


def _visible(ctx: ServiceContext) -> ColumnElement[bool]:
    """Documents this caller may see: of the patients it may see, not deleted."""
    principal = ctx.require_principal()
    patients = select(Patient.id).where(patient_filter(principal))
    return (PatientDocument.patient_id.in_(patients.scalar_subquery())) & (
        PatientDocument.deleted_at.is_(None)
    )


async def get_document(ctx: ServiceContext, document_id: uuid.UUID) -> PatientDocument:
    require(ctx.require_principal(), Action.DOCUMENT_READ)
    document = await ctx.db.scalar(
        select(PatientDocument).where(PatientDocument.id == document_id, _visible(ctx))
    )
    if document is None:
        raise NotFound("Document not found.")
    return document


async def documents_of(
    ctx: ServiceContext, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[PatientDocument]]:
    """Each patient's documents, newest first, in one query (for Patient.documents)."""
    found: dict[uuid.UUID, list[PatientDocument]] = {pid: [] for pid in patient_ids}
    if not patient_ids:
        return found
    rows = await ctx.db.scalars(
        select(PatientDocument)
        .where(PatientDocument.patient_id.in_(patient_ids), _visible(ctx))
        .order_by(PatientDocument.created_at.desc(), PatientDocument.id)
    )
    for row in rows:
        found[row.patient_id].append(row)
    return found


def filename(ctx: ServiceContext, document: PatientDocument) -> str | None:
    if document.filename_encrypted is None:
        return None
    return ctx.cipher.decrypt(document.filename_encrypted)


async def open_download(ctx: ServiceContext, document_id: uuid.UUID, via: str) -> Download:
    """Check, audit and open a document; the caller streams `chunks` to the client."""
    try:
        document = await get_document(ctx, document_id)
    except NotFound:
        await _audit_refusal(ctx, document_id, via)
        raise
    store = await store_named(require_hub(ctx), ctx.db, document.clinic_id, document.storage_plugin)
    stored = await store.open(document.object_key)
    _audit(ctx, "document.read", document, via=via)
    await ctx.db.commit()  # the read is on record before the first byte leaves
    chunks = crypto.decrypt_stream(
        stored,
        crypto.unwrap_key(ctx.cipher, document.key_encrypted),
        bytes.fromhex(document.nonce_prefix),
        crypto.associated_data(document.clinic_id, document.id),
        document.chunk_size,
    )
    return Download(document, chunks)


async def _audit_refusal(ctx: ServiceContext, document_id: uuid.UUID, via: str) -> None:
    """A refused download, in the log of the clinic that owns the document (so its admins
    see who tried), else in the caller's. The caller's answer stays the same NOT_FOUND."""
    principal = ctx.require_principal()
    await ctx.db.rollback()
    # The owner is looked up across clinics on purpose; nothing of it reaches the caller.
    async with ctx.database.transaction(TenantScope.cross_clinic()) as db:
        owner = (
            await db.execute(
                select(PatientDocument.clinic_id, PatientDocument.patient_id).where(
                    PatientDocument.id == document_id
                )
            )
        ).first()
        audit.record(
            db,
            "document.read",
            clinic_id=owner.clinic_id if owner else principal.clinic_id,
            patient_id=owner.patient_id if owner else None,
            actor_user_id=principal.user_id,
            target_type="document",
            target_id=document_id,
            outcome="denied",
            details={"via": via, "actor_clinic_id": str(principal.clinic_id)},
            request_id=ctx.request_id,
            ip=ctx.ip,
        )


# --- delete ----------------------------------------------------------------------------------------


async def delete(ctx: ServiceContext, document_id: uuid.UUID) -> PatientDocument:
    """Soft delete: hidden at once, removed by the purge job after DOCUMENT_RETENTION_DAYS."""
    principal = ctx.require_principal()
    require(principal, Action.DOCUMENT_DELETE)
    document = await get_document(ctx, document_id)
    now = utcnow()
    document.deleted_at = now
    document.deleted_by = principal.user_id
    document.purge_after = now + timedelta(days=ctx.settings.document_retention_days)
    _audit(ctx, "document.delete", document)
    await ctx.db.flush()
    return document


def _audit(ctx: ServiceContext, action: str, document: PatientDocument, **details: object) -> None:
    audit.record(
        ctx.db,
        action,
        clinic_id=document.clinic_id,
        actor_user_id=ctx.require_principal().user_id,
        target_type="document",
        target_id=document.id,
        details={"kind": document.kind, **details},
        request_id=ctx.request_id,
        ip=ctx.ip,
        patient_id=document.patient_id,
    )
