"""The demo path: a counselor uploads, the patient downloads, another clinic cannot, all audited."""

from __future__ import annotations

import hashlib

from gateway.db.models import Role
from schema.ids import to_global_id
from tests.documents.conftest import DELETE, DOCUMENTS, MARKER, PDF, Docs


async def test_counselor_uploads_patient_downloads_other_clinic_refused(docs: Docs) -> None:
    a, b = docs.world.a, docs.world.b
    response = await docs.upload(a.counselor, a.own_patient, PDF, filename="jane-consent.pdf")
    assert response.status_code == 201, response.text
    meta = response.json()["document"]
    assert meta["contentType"] == "application/pdf"
    assert meta["size"] == len(PDF)
    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()

    # Encrypted at rest, and the object's name says nothing about the patient or file.
    [stored] = docs.stored_files()
    raw = stored.read_bytes()
    assert MARKER not in raw and b"%PDF" not in raw
    assert "jane" not in str(stored) and "consent" not in str(stored)
    assert docs.spool_files() == []

    # The patient lists and downloads it through a signed link (no bearer token).
    patient_gid = to_global_id("Patient", a.own_patient.id)
    listed = await docs.gql.data(DOCUMENTS, {"id": patient_gid}, user=a.patient_user)
    [doc] = listed["patient"]["documents"]
    assert doc["filename"] == "jane-consent.pdf" and doc["kind"] == "CONSENT"
    url = await docs.link(a.patient_user, meta["id"])
    download = await docs.fetch(url)
    assert download.status_code == 200, download.text
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["cache-control"] == "no-store"
    assert "jane" not in download.headers["content-disposition"]

    # Clinic B's users: no link, no bearer download; the answer does not confirm it exists.
    for user in (b.admin, b.counselor, b.patient_user):
        assert (
            await docs.gql.error_code(DOCUMENT_LINK, {"id": meta["id"]}, user=user) == "NOT_FOUND"
        )
        refused = await docs.fetch(f"/documents/{meta['id']}/content", user=user)
        assert refused.status_code == 404
        assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # Clinic A's log shows all three: the upload, the patient's read, B's refused attempts.
    a_events = await docs.audit(a.clinic.id)
    assert [(e.action, e.outcome, e.actor_user_id) for e in a_events] == [
        ("document.upload", "success", a.counselor.id),
        ("document.read", "success", a.patient_user.id),
        ("document.read", "denied", b.admin.id),
        ("document.read", "denied", b.counselor.id),
        ("document.read", "denied", b.patient_user.id),
    ]
    assert a_events[1].details["via"] == "signed_link"
    assert a_events[2].details["actor_clinic_id"] == str(b.clinic.id)
    assert all(e.target_id == docs_id(meta["id"]) for e in a_events)
    assert await docs.audit(b.clinic.id) == []


DOCUMENT_LINK = """query($id: ID!) { documentDownloadLink(id: $id) { url } }"""


def docs_id(global_id: str) -> str:
    from schema.ids import from_global_id

    return str(from_global_id(global_id, "PatientDocument"))


async def test_bearer_download_and_roles(docs: Docs) -> None:
    a = docs.world.a
    doc_id = await docs.uploaded(a.admin, a.patients[1], filename=None)
    # The clinic's counselor reads it with a bearer token; the other patient cannot.
    ok = await docs.fetch(f"/documents/{doc_id}/content", user=a.counselor2)
    assert ok.status_code == 200 and ok.content == PDF
    other = await docs.fetch(f"/documents/{doc_id}/content", user=a.patient_user)
    assert other.status_code == 404
    anonymous = await docs.fetch(f"/documents/{doc_id}/content")
    assert anonymous.status_code == 401
    assert a.patient_user.role is Role.PATIENT


async def test_patient_uploads_own_but_not_for_others(docs: Docs) -> None:
    a = docs.world.a
    own = await docs.upload(a.patient_user, a.own_patient, PDF, kind="intake")
    assert own.status_code == 201
    other = await docs.upload(a.patient_user, a.patients[1], PDF)
    assert other.status_code == 404
    assert other.json()["errors"][0]["extensions"]["field"] == "patientId"
    assert len(docs.stored_files()) == 1


async def test_delete_hides_then_purge_removes(docs: Docs) -> None:
    from datetime import timedelta

    from gateway.db.types import utcnow
    from gateway.documents.purge import purge_due
    from gateway.integrations.hub import IntegrationHub

    a = docs.world.a
    doc_id = await docs.uploaded(a.counselor, a.own_patient)
    # A patient may not delete, a counselor may.
    assert await docs.gql.error_code(DELETE, {"id": doc_id}, user=a.patient_user) == "FORBIDDEN"
    await docs.gql.data(DELETE, {"id": doc_id}, user=a.counselor)
    gone = await docs.fetch(f"/documents/{doc_id}/content", user=a.counselor)
    assert gone.status_code == 404
    listed = await docs.gql.data(
        DOCUMENTS, {"id": to_global_id("Patient", a.own_patient.id)}, user=a.counselor
    )
    assert listed["patient"]["documents"] == []
    # Retained until DOCUMENT_RETENTION_DAYS have passed.
    hub = IntegrationHub.create(docs.settings, docs.database)
    try:
        assert (await purge_due(hub)).purged == 0
        assert len(docs.stored_files()) == 1
        later = utcnow() + timedelta(days=docs.settings.document_retention_days, minutes=1)
        assert (await purge_due(hub, later)).purged == 1
    finally:
        await hub.close()
    await docs.assert_nothing_stored(a.clinic.id)
    actions = [(e.action, e.outcome) for e in await docs.audit(a.clinic.id)]
    assert actions == [
        ("document.upload", "success"),
        ("document.delete", "success"),
        ("document.read", "denied"),  # the counselor's attempt after the delete
        ("document.purge", "success"),
    ]


async def test_signed_link_tampered_or_expired(docs: Docs, monkeypatch: object) -> None:
    import time

    a = docs.world.a
    doc_id = await docs.uploaded(a.counselor, a.own_patient)
    url = await docs.link(a.patient_user, doc_id)
    # Someone edits the link to claim another user (the counselor): the signature fails.
    forged = url.replace(str(a.patient_user.id), str(a.counselor.id))
    response = await docs.fetch(forged)
    assert response.status_code == 401
    assert "not valid" in response.json()["errors"][0]["message"]
    real_time = time.time
    monkeypatch.setattr(  # type: ignore[attr-defined]
        time, "time", lambda: real_time() + docs.settings.document_link_ttl_seconds + 1
    )
    expired = await docs.fetch(url)
    assert expired.status_code == 401
    assert "expired" in expired.json()["errors"][0]["message"]
