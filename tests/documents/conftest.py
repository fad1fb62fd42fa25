"""Documents under test: the real app over ASGI, the local store in a temporary directory.

`docs` uploads and downloads through the HTTP endpoints exactly as a front end
would, and answers what is left on disk and in the database after each attempt.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.documents.models import PatientDocument
from gateway.settings import Settings, load_settings
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import World

# A small but real PDF; the marker proves the stored bytes are not the plaintext.
MARKER = b"CONSENT-OF-JANE-EXAMPLE"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n% " + MARKER + b"\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64

LINK = """query($id: ID!) { documentDownloadLink(id: $id) { url expiresAt } }"""
DOCUMENTS = """query($id: ID!) { patient(id: $id) { documents {
  id kind contentType size sha256 filename createdAt } } }"""
DELETE = """mutation($id: ID!) { deletePatientDocument(id: $id) { id } }"""


def documents_settings(database_url: str, root: Path, **overrides: Any) -> Settings:
    return load_settings(
        app_env="test",
        database_url=database_url,
        document_local_dir=str(root / "documents"),
        **overrides,
    )


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Upload spool files go here, so a test can see that none were left behind."""
    path = tmp_path / "spool"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def settings(database_url: str, tmp_path: Path, spool: Path) -> Settings:
    return documents_settings(database_url, tmp_path)


@dataclass
class Docs:
    http: httpx.AsyncClient
    gql: GraphQLClient
    database: Database
    settings: Settings
    world: World
    spool: Path
    app: Any

    @property
    def store_dir(self) -> Path:
        return Path(self.settings.document_local_dir)

    async def upload(
        self,
        user: Any,
        patient: Any,
        content: bytes | AsyncIterable[bytes],
        *,
        kind: str = "consent",
        filename: str | None = "consent.pdf",
        session: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        params = {"patientId": to_global_id("Patient", patient.id), "kind": kind}
        if filename:
            params["filename"] = filename
        if session is not None:
            params["sessionId"] = to_global_id("CounselingSession", session.id)
        sent = {"Authorization": f"Bearer {self.gql.token_for(user)}", **(headers or {})}
        return await self.http.post("/documents", params=params, content=content, headers=sent)

    async def uploaded(self, user: Any, patient: Any, content: bytes = PDF, **kw: Any) -> str:
        response = await self.upload(user, patient, content, **kw)
        assert response.status_code == 201, response.text
        return str(response.json()["document"]["id"])

    async def link(self, user: Any, document_id: str) -> str:
        data = await self.gql.data(LINK, {"id": document_id}, user=user)
        return str(data["documentDownloadLink"]["url"])

    async def fetch(self, url: str, user: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.gql.token_for(user)}"} if user else {}
        return await self.http.get(
            url.removeprefix(self.settings.app_url.rstrip("/")), headers=headers
        )

    def stored_files(self) -> list[Path]:
        if not self.store_dir.exists():
            return []
        return [p for p in self.store_dir.rglob("*") if p.is_file()]

    def spool_files(self) -> list[Path]:
        return list(self.spool.iterdir())

    async def rows(self, clinic_id: Any, *, with_deleted: bool = True) -> list[PatientDocument]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            query = select(PatientDocument).where(PatientDocument.clinic_id == clinic_id)
            if not with_deleted:
                query = query.where(PatientDocument.deleted_at.is_(None))
            return list(await db.scalars(query))

    async def audit(self, clinic_id: Any) -> list[AuditEvent]:
        async with self.database.session(TenantScope.clinic(clinic_id)) as db:
            rows = await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.clinic_id == clinic_id, AuditEvent.action.like("document.%"))
                .order_by(AuditEvent.created_at)
            )
            return list(rows)

    async def assert_nothing_stored(self, clinic_id: Any) -> None:
        assert self.stored_files() == []
        assert self.spool_files() == []
        assert await self.rows(clinic_id) == []


@pytest.fixture
async def docs(
    settings: Settings, database: Database, world: World, spool: Path
) -> AsyncIterator[Docs]:
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            gql = GraphQLClient(http, settings)
            yield Docs(http, gql, database, settings, world, spool, app)
