"""`santana rotate-keys` re-wraps document keys; the stored objects are not touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.crypto import DataCipher
from gateway.integrations.rotation import rotate_keys
from tests.conftest import GraphQLClient
from tests.documents.conftest import PDF, Docs, documents_settings


async def test_rotation_rewraps_keys_and_documents_still_open(
    docs: Docs, database_url: str, tmp_path: Path, spool: Path, database: Any
) -> None:
    a = docs.world.a
    doc_id = await docs.uploaded(a.counselor, a.own_patient)
    [before] = await docs.rows(a.clinic.id)
    [stored] = docs.stored_files()
    object_bytes = stored.read_bytes()

    new_key = DataCipher.generate_key()
    old_keys = docs.settings.data_encryption_keys
    report = await rotate_keys(database, DataCipher([new_key, *old_keys.split(",")]))
    assert report.rotated["patient_documents.key_encrypted"] == 1
    [after] = await docs.rows(a.clinic.id)
    assert after.key_encrypted != before.key_encrypted
    assert stored.read_bytes() == object_bytes  # the file was not re-encrypted

    # With only the new key configured, the document still downloads.
    settings = documents_settings(database_url, tmp_path, data_encryption_keys=new_key)
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            rotated = Docs(
                http, GraphQLClient(http, settings), database, settings, docs.world, spool, app
            )
            response = await rotated.fetch(f"/documents/{doc_id}/content", user=a.patient_user)
            assert response.status_code == 200
            assert response.content == PDF
