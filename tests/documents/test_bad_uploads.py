"""Each bad upload gets a clear error and leaves nothing behind: no object, no row, no spool file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from schema.ids import to_global_id
from tests.documents.conftest import PDF, PNG, Docs

MB = 1024 * 1024


def error(response: Any) -> dict[str, Any]:
    return response.json()["errors"][0]  # type: ignore[no-any-return]


async def test_empty_file(docs: Docs) -> None:
    a = docs.world.a
    response = await docs.upload(a.counselor, a.own_patient, b"")
    assert response.status_code == 422
    assert error(response)["extensions"] == {
        "code": "VALIDATION",
        "field": "file",
        "reason": "empty",
    }
    await docs.assert_nothing_stored(a.clinic.id)


async def test_executable_disguised_as_pdf(docs: Docs) -> None:
    a = docs.world.a
    windows_exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 500
    response = await docs.upload(
        a.counselor,
        a.own_patient,
        windows_exe,
        filename="consent.pdf",
        headers={"Content-Type": "application/pdf"},
    )
    assert response.status_code == 422
    assert error(response)["extensions"]["reason"] == "type"
    assert "judged by its content" in error(response)["message"]
    await docs.assert_nothing_stored(a.clinic.id)


async def test_png_named_pdf_is_a_mismatch(docs: Docs) -> None:
    a = docs.world.a
    response = await docs.upload(a.counselor, a.own_patient, PNG, filename="lab.pdf")
    assert response.status_code == 422
    assert error(response)["extensions"]["reason"] == "type_mismatch"
    await docs.assert_nothing_stored(a.clinic.id)
    # Named for what it is, the same PNG is accepted.
    ok = await docs.upload(a.counselor, a.own_patient, PNG, filename="lab.png", kind="lab_report")
    assert ok.status_code == 201 and ok.json()["document"]["contentType"] == "image/png"


async def test_oversized_declared_is_refused_before_reading(docs: Docs) -> None:
    a = docs.world.a
    limit = docs.settings.document_max_bytes
    assert limit == 20 * MB  # the default
    response = await docs.upload(a.counselor, a.own_patient, PDF + b"\x00" * (limit - len(PDF) + 1))
    assert response.status_code == 413
    assert error(response)["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
    assert error(response)["extensions"]["maxBytes"] == limit
    await docs.assert_nothing_stored(a.clinic.id)


async def test_oversized_streamed_without_length_is_cut_off(docs: Docs) -> None:
    a = docs.world.a
    limit = docs.settings.document_max_bytes

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to trust
        yield PDF
        sent = len(PDF)
        while sent <= limit:
            yield b"\x00" * MB
            sent += MB

    response = await docs.upload(a.counselor, a.own_patient, body())
    assert response.status_code == 413
    assert error(response)["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
    await docs.assert_nothing_stored(a.clinic.id)


async def test_patient_of_another_clinic(docs: Docs) -> None:
    a, b = docs.world.a, docs.world.b
    response = await docs.upload(a.counselor, b.own_patient, PDF)
    assert response.status_code == 404
    assert error(response)["extensions"] == {"code": "NOT_FOUND", "field": "patientId"}
    await docs.assert_nothing_stored(a.clinic.id)
    await docs.assert_nothing_stored(b.clinic.id)


async def test_session_of_another_patient(docs: Docs) -> None:
    a = docs.world.a
    other_patients_session = next(s for s in a.sessions if s.patient_id != a.patients[1].id)
    response = await docs.upload(a.counselor, a.patients[1], PDF, session=other_patients_session)
    assert response.status_code == 404
    assert error(response)["extensions"]["field"] == "sessionId"
    await docs.assert_nothing_stored(a.clinic.id)


async def test_unknown_kind_and_missing_token(docs: Docs) -> None:
    a = docs.world.a
    response = await docs.upload(a.counselor, a.own_patient, PDF, kind="selfie")
    assert response.status_code == 422 and error(response)["extensions"]["field"] == "kind"
    anonymous = await docs.http.post(
        "/documents",
        params={"patientId": to_global_id("Patient", a.own_patient.id), "kind": "consent"},
        content=PDF,
    )
    assert anonymous.status_code == 401
    await docs.assert_nothing_stored(a.clinic.id)


async def test_interrupted_upload(docs: Docs) -> None:
    """The client sends the first 256 KiB of a PDF, then the connection drops."""
    a = docs.world.a
    query = urlencode({"patientId": to_global_id("Patient", a.own_patient.id), "kind": "consent"})
    incoming = [
        {"type": "http.request", "body": PDF + b"\x00" * (256 * 1024), "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    token = docs.gql.token_for(a.counselor)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/documents",
        "raw_path": b"/documents",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await docs.app(scope, receive, send)
    await docs.assert_nothing_stored(a.clinic.id)
    assert await docs.audit(a.clinic.id) == []


async def test_upload_rate_limit(
    database_url: str, tmp_path: Any, spool: Any, database: Any, world: Any
) -> None:
    """RATE_LIMIT_UPLOAD (the operations manual's 100/hour), here 2/hour: the third is refused."""
    import httpx

    from gateway.app import create_app
    from tests.conftest import GraphQLClient
    from tests.documents.conftest import documents_settings

    settings = documents_settings(database_url, tmp_path, rate_limit_upload="2/hour")
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            docs = Docs(http, GraphQLClient(http, settings), database, settings, world, spool, app)
            a = world.a
            for _ in range(2):
                assert (await docs.upload(a.counselor, a.own_patient, PDF)).status_code == 201
            third = await docs.upload(a.counselor, a.own_patient, PDF)
            assert third.status_code == 429
            assert error(third)["extensions"]["code"] == "RATE_LIMITED"
            assert int(third.headers["retry-after"]) > 0
            assert len(docs.stored_files()) == 2
            # Another user has a count of their own.
            assert (await docs.upload(a.admin, a.own_patient, PDF)).status_code == 201
