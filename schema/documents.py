"""GraphQL for patient documents: metadata, download links, delete, send to the EMR.

The bytes never travel through GraphQL: uploads go to `POST /documents` and
downloads to `GET /documents/{id}/content` (gateway.documents.http), either with
the bearer token or through a short-lived signed link from `documentDownloadLink`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import Enum

import strawberry
from aiodataloader import DataLoader

from gateway.auth.permissions import Action, allowed
from gateway.documents import emr, links, service
from gateway.documents import models as document_models
from schema.context import GraphQLContext, Info
from schema.ids import from_global_id, to_global_id
from schema.transactions import Transactional


@strawberry.enum(description="What a patient document is")
class DocumentKind(Enum):
    CONSENT = "consent"
    INTAKE = "intake"
    LAB_REPORT = "lab_report"
    OTHER = "other"


@strawberry.type(description="A file kept for a patient: consent form, intake, lab report")
class PatientDocument:
    id: strawberry.ID
    kind: DocumentKind
    content_type: str = strawberry.field(description="Judged from the file's bytes")
    size: int = strawberry.field(description="Bytes")
    sha256: str = strawberry.field(description="Checksum of the file as uploaded (hex)")
    created_at: datetime
    emr_document_id: str | None = strawberry.field(
        description="The EMR's DocumentReference id, once the document was sent there"
    )
    model: strawberry.Private[document_models.PatientDocument]

    @classmethod
    def from_model(cls, m: document_models.PatientDocument) -> PatientDocument:
        return cls(
            id=to_global_id("PatientDocument", m.id),
            kind=DocumentKind(m.kind),
            content_type=m.content_type,
            size=m.size,
            sha256=m.sha256,
            created_at=m.created_at,
            emr_document_id=m.emr_document_id,
            model=m,
        )

    @strawberry.field(description="The file name it was uploaded with, if any")
    def filename(self, info: Info) -> str | None:
        return service.filename(info.context, self.model)

    @strawberry.field(description="The patient it belongs to (global id)")
    def patient_id(self) -> strawberry.ID:
        return to_global_id("Patient", self.model.patient_id)

    @strawberry.field(description="The counseling session it was uploaded for, if any")
    def session_id(self) -> strawberry.ID | None:
        sid = self.model.session_id
        return to_global_id("CounselingSession", sid) if sid else None

    @strawberry.field(description="Path of the authenticated download (send the bearer token)")
    def content_path(self) -> str:
        return links.DOWNLOAD_PATH.format(document_id=self.model.id)


@strawberry.type(description="A short-lived signed download link")
class DocumentLink:
    url: str
    expires_at: datetime


def _loader(ctx: GraphQLContext) -> DataLoader:  # type: ignore[type-arg]
    # One documents query per request for a whole list of patients.
    loader: DataLoader | None = ctx.__dict__.get("_document_loader")  # type: ignore[type-arg]
    if loader is None:

        async def load(ids: list[uuid.UUID]) -> list[list[document_models.PatientDocument]]:
            found = await service.documents_of(ctx, ids)
            return [found[i] for i in ids]

        loader = ctx.__dict__["_document_loader"] = DataLoader(load)
    return loader


async def patient_documents(info: Info, patient_id: uuid.UUID) -> list[PatientDocument]:
    """`Patient.documents`: empty for roles that may not read documents."""
    if not allowed(info.context.require_principal(), Action.DOCUMENT_READ):
        return []
    rows = await _loader(info.context).load(patient_id)
    return [PatientDocument.from_model(row) for row in rows]


@strawberry.type
class DocumentQueries:
    @strawberry.field(description="One patient document you may see")
    async def patient_document(self, info: Info, id: strawberry.ID) -> PatientDocument:
        row = await service.get_document(info.context, from_global_id(id, "PatientDocument"))
        return PatientDocument.from_model(row)

    @strawberry.field(
        description="A signed link that downloads the document without a bearer token, "
        "valid for DOCUMENT_LINK_TTL_SECONDS and only for you"
    )
    async def document_download_link(self, info: Info, id: strawberry.ID) -> DocumentLink:
        ctx = info.context
        row = await service.get_document(ctx, from_global_id(id, "PatientDocument"))
        path, expires = links.sign(
            ctx.settings.jwt_secret,
            row.id,
            ctx.require_principal(),
            ctx.settings.document_link_ttl_seconds,
        )
        return DocumentLink(
            url=f"{ctx.settings.app_url.rstrip('/')}{path}",
            expires_at=datetime.fromtimestamp(expires, UTC),
        )


@strawberry.type
class DocumentMutations:
    @strawberry.mutation(
        extensions=[Transactional()],
        description="Delete a document (counselors and clinic admins); it is purged after "
        "DOCUMENT_RETENTION_DAYS",
    )
    async def delete_patient_document(self, info: Info, id: strawberry.ID) -> PatientDocument:
        row = await service.delete(info.context, from_global_id(id, "PatientDocument"))
        return PatientDocument.from_model(row)

    @strawberry.mutation(
        extensions=[Transactional()],
        description="Queue the document for the clinic's EMR (a FHIR DocumentReference), "
        "when its EMR plugin accepts documents",
    )
    async def send_document_to_emr(self, info: Info, id: strawberry.ID) -> PatientDocument:
        row = await emr.send_to_emr(info.context, from_global_id(id, "PatientDocument"))
        return PatientDocument.from_model(row)
