"""HTTP endpoints for document bytes (GraphQL carries only metadata and links).

POST /documents?patientId=…&kind=…[&sessionId=…][&filename=…]
    The request body is the file itself, streamed (never buffered whole). Needs
    `Authorization: Bearer`; counts against RATE_LIMIT_UPLOAD. A plain body, not a
    form: a cross-site page cannot send one with credentials, and the bytes go
    straight into encryption without multipart parsing.
GET /documents/{id}/content
    The decrypted file, streamed. Either with `Authorization: Bearer`, or as a
    signed link from `documentDownloadLink` (query `user, role, clinic, expires, sig`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gateway.documents import links, service
from gateway.documents.models import DocumentKind, PatientDocument
from gateway.documents.sniffing import FILE_EXTENSION
from gateway.errors import GatewayError, Unauthenticated, ValidationFailed
from gateway.integrations.errors import IntegrationError, ProviderRejected
from gateway.security.errors import RateLimited, error_body
from gateway.security.ratelimit import limiter_of
from gateway.services.context import ServiceContext
from schema.ids import from_global_id, parse_global_id, to_global_id

log = logging.getLogger("santana.documents")

STATUS = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "VALIDATION": 422,
    "DOCUMENT_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
}


def _context(request: Request) -> ServiceContext:
    state = request.scope.get("state", {})
    app = request.app.state
    return ServiceContext(
        settings=app.settings,
        database=app.database,
        cipher=app.cipher,
        principal=state.get("principal"),
        auth_error=state.get("auth_error"),
        request_id=state.get("request_id"),
        ip=request.client.host if request.client else None,
        integrations=app.integrations,
    )


def _error(exc: GatewayError) -> JSONResponse:
    if isinstance(exc, IntegrationError):
        # The store refused (e.g. the object is gone) or is down: the gateway's side failed.
        status = 502 if isinstance(exc, ProviderRejected) else 503
    else:
        status = STATUS.get(exc.code, 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(
        error_body(exc.code, exc.message, **exc.extensions), status_code=status, headers=headers
    )


def document_json(document: PatientDocument) -> dict[str, Any]:
    return {
        "id": to_global_id("PatientDocument", document.id),
        "patientId": to_global_id("Patient", document.patient_id),
        "kind": document.kind,
        "contentType": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "createdAt": document.created_at.isoformat(),
    }


def _upload_request(request: Request) -> service.UploadRequest:
    query = request.query_params
    if "patientId" not in query:
        raise ValidationFailed("`patientId` is required.", field="patientId")
    try:
        kind = DocumentKind(query.get("kind", ""))
    except ValueError:
        choices = ", ".join(k.value for k in DocumentKind)
        raise ValidationFailed(f"`kind` must be one of {choices}.", field="kind") from None
    length = request.headers.get("content-length")
    return service.UploadRequest(
        patient_id=from_global_id(query["patientId"], "Patient", "patientId"),
        kind=kind,
        session_id=(
            from_global_id(query["sessionId"], "CounselingSession", "sessionId")
            if query.get("sessionId")
            else None
        ),
        filename=query.get("filename") or None,
        declared_size=int(length) if length and length.isdigit() else None,
    )


async def upload(request: Request) -> Response:
    ctx = _context(request)
    try:
        principal = ctx.require_principal()
        limiter = limiter_of(request)
        if limiter is not None:
            await limiter.check_upload(f"user:{principal.user_id}")
        document = await service.upload(ctx, _upload_request(request), request.stream())
        return JSONResponse({"document": document_json(document)}, status_code=201)
    except GatewayError as exc:
        return _error(exc)
    except ClientDisconnect:
        # Nothing was stored (the service removed its spool file); nobody reads an answer.
        log.info("upload interrupted by the client (request %s)", ctx.request_id)
        return Response(status_code=400)
    finally:
        await ctx.close()


def _document_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        type_name, row_id = parse_global_id(value)
        if type_name != "PatientDocument":
            raise ValidationFailed("That is not a document id.", field="id") from None
        return row_id


async def download(request: Request) -> Response:
    ctx = _context(request)
    try:
        document_id = _document_id(request.path_params["document_id"])
        via = "bearer"
        if "sig" in request.query_params:
            ctx.sign_in(
                links.verify(ctx.settings.jwt_secret, document_id, dict(request.query_params))
            )
            via = "signed_link"
        elif ctx.principal is None:
            raise ctx.auth_error or Unauthenticated("Log in first.", reason="missing")
        opened = await service.open_download(ctx, document_id, via)
    except GatewayError as exc:
        await ctx.close()
        return _error(exc)
    except BaseException:
        await ctx.close()
        raise
    document = opened.document
    await ctx.close()  # the bytes need no database

    name = f"document-{document.id}.{FILE_EXTENSION.get(document.content_type, 'bin')}"
    return StreamingResponse(
        opened.chunks,
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size),
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/documents", upload, methods=["POST"]),
        Route("/documents/{document_id}/content", download, methods=["GET"]),
    ]
