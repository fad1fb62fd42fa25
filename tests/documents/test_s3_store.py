"""The S3 store through boto3 against moto's S3 wire server on a local port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from gateway.app import create_app
from gateway.db.types import utcnow
from gateway.documents.purge import purge_due
from gateway.integrations.hub import IntegrationHub
from tests.conftest import GraphQLClient
from tests.documents.conftest import DELETE, MARKER, PDF, Docs, documents_settings

ACCESS_KEY, SECRET_KEY = "AKIDCLINICA0001", "s3-secret-of-clinic-a"
ENABLE = """mutation($config: JSON, $secrets: JSON) {
  enableIntegration(plugin: "store_s3", config: $config, secrets: $secrets) { plugin status } }"""


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def bucket(s3_url: str) -> tuple[Any, str]:
    name = f"docs-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    return client, name


def objects(client: Any, name: str) -> list[dict[str, Any]]:
    return list(client.list_objects_v2(Bucket=name).get("Contents", []))


async def test_clinic_enables_s3_upload_download_delete_purge(docs: Docs, s3_url: str) -> None:
    a, b = docs.world.a, docs.world.b
    client, name = bucket(s3_url)
    await docs.gql.data(
        ENABLE,
        {
            "config": {
                "bucket": name,
                "endpoint_url": s3_url,
                "access_key_id": ACCESS_KEY,
                "prefix": "santana/",
            },
            "secrets": {"secret_access_key": SECRET_KEY},
        },
        user=a.admin,
    )
    doc_id = await docs.uploaded(a.counselor, a.own_patient, filename="jane-consent.pdf")
    assert docs.stored_files() == []  # clinic A's documents went to its bucket, not the disk
    [stored] = objects(client, name)
    key = stored["Key"]
    assert key.startswith(f"santana/{a.clinic.id}/") and "jane" not in key
    raw = client.get_object(Bucket=name, Key=key)["Body"].read()
    assert MARKER not in raw and not raw.startswith(b"%PDF")

    response = await docs.fetch(await docs.link(a.patient_user, doc_id))
    assert response.status_code == 200 and response.content == PDF

    # Clinic B still uses the deployment's local store.
    await docs.uploaded(b.counselor, b.own_patient)
    assert len(docs.stored_files()) == 1 and len(objects(client, name)) == 1

    await docs.gql.data(DELETE, {"id": doc_id}, user=a.admin)
    hub = IntegrationHub.create(docs.settings, docs.database)
    try:
        later = utcnow() + timedelta(days=docs.settings.document_retention_days + 1)
        assert (await purge_due(hub, later)).purged == 1
    finally:
        await hub.close()
    assert objects(client, name) == []
    assert await docs.rows(a.clinic.id) == []


async def test_deployment_default_s3_and_missing_object(
    database_url: str,
    tmp_path: Path,
    spool: Path,
    database: Any,
    world: Any,
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DOCUMENT_STORAGE=store_s3 with its bucket from DOCUMENT_S3_* platform defaults."""
    client, name = bucket(s3_url)
    for field, value in {
        "BUCKET": name,
        "ENDPOINT_URL": s3_url,
        "ACCESS_KEY_ID": ACCESS_KEY,
        "SECRET_ACCESS_KEY": SECRET_KEY,
    }.items():
        monkeypatch.setenv(f"DOCUMENT_S3_{field}", value)
    settings = documents_settings(database_url, tmp_path, document_storage="store_s3")
    app = create_app(settings, database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            docs = Docs(http, GraphQLClient(http, settings), database, settings, world, spool, app)
            a = world.a
            doc_id = await docs.uploaded(a.counselor, a.own_patient)
            [stored] = objects(client, name)
            assert docs.stored_files() == []
            ok = await docs.fetch(f"/documents/{doc_id}/content", user=a.counselor)
            assert ok.content == PDF
            # The object vanished behind the gateway's back: a clear error, not a broken stream.
            client.delete_object(Bucket=name, Key=stored["Key"])
            gone = await docs.fetch(f"/documents/{doc_id}/content", user=a.counselor)
            assert gone.status_code == 502
            assert gone.json()["errors"][0]["extensions"]["code"] == "PROVIDER_REJECTED"


async def test_bucket_gone_upload_fails_cleanly(docs: Docs, s3_url: str) -> None:
    """The clinic's bucket is deleted after it was set up: a clear error, nothing kept."""
    a = docs.world.a
    client, name = bucket(s3_url)
    await docs.gql.data(
        ENABLE,
        {
            "config": {"bucket": name, "endpoint_url": s3_url, "access_key_id": ACCESS_KEY},
            "secrets": {"secret_access_key": SECRET_KEY},
        },
        user=a.admin,
    )
    client.delete_bucket(Bucket=name)
    response = await docs.upload(a.counselor, a.own_patient, PDF)
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_CONFIGURED"
    await docs.assert_nothing_stored(a.clinic.id)
