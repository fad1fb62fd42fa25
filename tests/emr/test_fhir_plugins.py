"""The Epic and Oracle Health plugins against the local FHIR R4 server, over real HTTP.

Each test says what it tries: SMART Backend Services tokens (signed, cached, renewed),
refused keys and scopes, paging, FHIR errors turned into typed errors, timeouts,
Appointment and DocumentReference writes, and the open (no-auth) read-only mode.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from gateway.crypto import DataCipher
from gateway.integrations import (
    AppointmentPush,
    DocumentPush,
    NotConfigured,
    PatientQuery,
    ProviderRejected,
    ProviderUnavailable,
)
from gateway.integrations.config import ConfigStore, PlatformDefaults
from plugins.emr_cerner import plugin as cerner
from plugins.emr_cerner.plugin import CernerConfig
from plugins.emr_epic import plugin as epic
from plugins.emr_epic.plugin import EpicConfig
from plugins.fhir_base import auth
from plugins.fhir_base.config import FhirConfig
from tests.emr.conftest import (
    EPIC_CLIENT,
    EPIC_KID,
    Emrs,
    Keys,
    cerner_config,
    epic_config,
    plugin_context,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def query(**fields: object) -> PatientQuery:
    return PatientQuery.model_validate(fields)


def epic_ctx(emrs: Emrs, keys: Keys, key: str | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    return plugin_context(EpicConfig.model_validate(epic_config(emrs, keys, **overrides)), key)


def cerner_ctx(emrs: Emrs, keys: Keys, **overrides: object):  # type: ignore[no-untyped-def]
    return plugin_context(CernerConfig.model_validate(cerner_config(emrs, keys, **overrides)))


def appointment(reference: str = "session-1", **fields: object) -> AppointmentPush:
    values: dict[str, object] = {
        "emr_patient_id": "example",
        "starts_at": START,
        "ends_at": START + timedelta(minutes=50),
        "description": "Counseling session",
        "reference": reference,
    }
    return AppointmentPush.model_validate(values | fields)


def patient_requests(emrs: Emrs, prefix: str = "/epic/Patient") -> int:
    return sum(1 for _, path in emrs.epic.requests if path.startswith(prefix))


# --- auth ------------------------------------------------------------------------------


async def test_both_vendors_get_a_token_with_a_signed_assertion_and_reuse_it(
    emrs: Emrs, keys: Keys
) -> None:
    """Epic with an RS384 key, Oracle Health with ES384: the fake verifies each signature."""
    ctx = epic_ctx(emrs, keys)
    await epic.validate_config(ctx)
    found = await epic.search_patients(ctx, query(family="Chalmers"))
    assert [p.emr_id for p in found] == ["example"]
    assert emrs.epic.token_requests == 1  # the second call reused the cached token

    cctx = cerner_ctx(emrs, keys)
    assert (await cerner.get_patient(cctx, "1")).family == "Everywoman"  # type: ignore[union-attr]
    assert emrs.cerner.token_requests == 1


def test_the_assertion_has_the_claims_smart_backend_services_requires(keys: Keys) -> None:
    config = FhirConfig.model_validate(
        {
            "base_url": "https://fhir.example.test/R4",
            "client_id": EPIC_CLIENT,
            "key_id": EPIC_KID,
            "private_key": keys.rsa,
        }
    )
    url = "https://fhir.example.test/oauth2/token"
    first, second = auth.assertion(config, url, "Epic"), auth.assertion(config, url, "Epic")
    header = jwt.get_unverified_header(first)
    claims = jwt.decode(first, options={"verify_signature": False})
    assert header["alg"] == "RS384" and header["kid"] == EPIC_KID
    assert claims["iss"] == claims["sub"] == EPIC_CLIENT and claims["aud"] == url
    assert claims["exp"] - claims["iat"] <= 300
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


async def test_the_fake_token_endpoint_refuses_replayed_and_long_lived_assertions(
    emrs: Emrs, keys: Keys
) -> None:
    """Shows the fake really verifies: the same jti twice, or exp ten minutes out, is refused."""
    url = f"{emrs.epic_url}/oauth2/token"
    config = EpicConfig.model_validate(epic_config(emrs, keys))
    signed = auth.assertion(config, url, "Epic")
    now = int(time.time())
    long_lived = jwt.encode(
        {"iss": EPIC_CLIENT, "sub": EPIC_CLIENT, "aud": url, "jti": "x1", "exp": now + 600},
        keys.rsa,
        algorithm="RS384",
        headers={"kid": EPIC_KID},
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "scope": "system/Patient.read",
    }
    async with httpx.AsyncClient() as http:
        ok = await http.post(url, data=form | {"client_assertion": signed})
        replay = await http.post(url, data=form | {"client_assertion": signed})
        too_long = await http.post(url, data=form | {"client_assertion": long_lived})
    assert ok.status_code == 200 and ok.json()["scope"] == "system/Patient.read"
    assert replay.status_code == 401 and too_long.status_code == 401


async def test_a_key_the_emr_does_not_know_is_not_configured_and_leaks_nothing(
    emrs: Emrs, keys: Keys
) -> None:
    ctx = epic_ctx(emrs, keys, private_key=keys.stranger_rsa)
    with pytest.raises(NotConfigured) as refused:
        await epic.search_patients(ctx, query(family="Chalmers"))
    assert "refused the client credentials" in refused.value.message
    assert "PRIVATE" not in refused.value.message and not emrs.epic.tokens


async def test_an_unreadable_or_mismatched_key_is_not_configured(emrs: Emrs, keys: Keys) -> None:
    for bad in ({"private_key": "not a pem"}, {"private_key": keys.rsa, "algorithm": "ES384"}):
        with pytest.raises(NotConfigured, match="cannot sign"):
            await epic.validate_config(epic_ctx(emrs, keys, **bad))
    assert emrs.epic.token_requests == 0


async def test_an_expired_token_is_replaced_before_use(emrs: Emrs, keys: Keys) -> None:
    emrs.epic.token_ttl = 1
    ctx = epic_ctx(emrs, keys)
    await epic.get_patient(ctx, "example")
    await asyncio.sleep(1.0)  # past the token's renewal point (90% of its one-second life)
    await epic.get_patient(ctx, "example")
    assert emrs.epic.token_requests == 2


async def test_a_revoked_token_is_renewed_once_on_401(emrs: Emrs, keys: Keys) -> None:
    ctx = epic_ctx(emrs, keys)
    await epic.get_patient(ctx, "example")
    emrs.epic.revoke_tokens()  # the EMR forgets it early: the next read answers 401
    assert (await epic.get_patient(ctx, "example")) is not None
    assert emrs.epic.token_requests == 2


async def test_a_401_after_renewal_is_not_configured_not_a_loop(emrs: Emrs, keys: Keys) -> None:
    emrs.epic.token_ttl = 0  # every token is dead on arrival
    ctx = epic_ctx(emrs, keys)
    with pytest.raises(NotConfigured) as refused:
        await epic.get_patient(ctx, "example")
    assert refused.value.extensions["httpStatus"] == 401
    assert patient_requests(emrs) == 2 and emrs.epic.token_requests == 2


async def test_a_scope_the_emr_did_not_grant_is_a_403_not_configured(
    emrs: Emrs, keys: Keys
) -> None:
    emrs.epic.register_client(EPIC_CLIENT, scopes=frozenset({"system/Patient.read"}))
    ctx = epic_ctx(emrs, keys)
    with pytest.raises(NotConfigured) as refused:
        await epic.push_appointment(ctx, appointment())
    assert refused.value.extensions == {"httpStatus": 403, "fhirIssues": ["forbidden"]}
    assert not emrs.epic.appointments


async def test_only_the_scopes_the_clinic_turned_on_are_requested(emrs: Emrs, keys: Keys) -> None:
    reads_only = EpicConfig.model_validate(epic_config(emrs, keys, push_appointments=False))
    everything = EpicConfig.model_validate(epic_config(emrs, keys, push_documents=True))
    assert reads_only.scopes == "system/Patient.read"
    assert everything.scopes.split() == [
        "system/Patient.read",
        "system/Appointment.write",
        "system/DocumentReference.write",
    ]


async def test_a_client_secret_works_where_the_server_issues_one(emrs: Emrs, keys: Keys) -> None:
    """EPIC_CLIENT_SECRET of the operations manual: client_secret_basic instead of a key."""
    emrs.epic.register_client("secret-client", secret="s3cret-value-123")
    ctx = epic_ctx(
        emrs, keys, client_id="secret-client", private_key=None, client_secret="s3cret-value-123"
    )
    assert (await epic.get_patient(ctx, "example")) is not None


def test_incomplete_credentials_are_refused_by_the_config_model(emrs: Emrs, keys: Keys) -> None:
    with pytest.raises(ValidationError, match="key_id"):
        EpicConfig.model_validate(epic_config(emrs, keys, key_id=None))
    with pytest.raises(ValidationError, match="private_key"):
        EpicConfig.model_validate(epic_config(emrs, keys, private_key=None))


# --- discovery ---------------------------------------------------------------------------


async def test_the_token_endpoint_is_discovered_once_and_cached(emrs: Emrs, keys: Keys) -> None:
    ctx = epic_ctx(emrs, keys)
    await epic.get_patient(ctx, "example")
    emrs.epic.revoke_tokens()
    await epic.get_patient(ctx, "example")
    smart = [p for _, p in emrs.epic.requests if p.endswith("smart-configuration")]
    assert len(smart) == 1 and emrs.epic.token_requests == 2


async def test_without_smart_configuration_the_capability_statement_names_it(
    emrs: Emrs, keys: Keys
) -> None:
    emrs.epic.smart_configuration = False
    await epic.get_patient(epic_ctx(emrs, keys), "example")
    paths = [p for _, p in emrs.epic.requests]
    assert paths[:3] == [
        "/epic/.well-known/smart-configuration",
        "/epic/metadata",
        "/epic/oauth2/token",
    ]


# --- reads and paging --------------------------------------------------------------------


async def test_search_follows_next_links_up_to_the_page_cap(emrs: Emrs, keys: Keys) -> None:
    emrs.epic.page_size = 2  # four Nuclear family members: two pages
    everyone = await epic.search_patients(epic_ctx(emrs, keys), query(family="nuclear"))
    assert [p.given for p in everyone] == ["Nancy", "Neville", "Ned", "Nelda"]
    assert patient_requests(emrs) == 2

    capped = await epic.search_patients(epic_ctx(emrs, keys, max_pages=1), query(family="nuclear"))
    assert len(capped) == 2 and patient_requests(emrs) == 3


async def test_search_stops_at_the_limit_without_reading_more_pages(emrs: Emrs, keys: Keys) -> None:
    emrs.epic.page_size = 2
    found = await epic.search_patients(epic_ctx(emrs, keys), query(family="nuclear", limit=2))
    assert len(found) == 2 and patient_requests(emrs) == 1


async def test_a_next_link_to_another_host_is_not_followed(emrs: Emrs, keys: Keys) -> None:
    """The bearer token must never travel to a host the clinic did not configure."""
    emrs.epic.page_size = 2
    emrs.epic.next_base = "http://127.0.0.2:9"
    found = await epic.search_patients(epic_ctx(emrs, keys), query(family="nuclear"))
    assert len(found) == 2


async def test_search_by_identifier_and_birth_date_maps_mrn_and_gender(
    emrs: Emrs, keys: Keys
) -> None:
    ctx = epic_ctx(emrs, keys)
    by_mrn = await epic.search_patients(ctx, query(identifier="12345"))
    by_birth = await epic.search_patients(ctx, query(birth_date=date(1974, 12, 25)))
    assert by_mrn == by_birth
    record = by_mrn[0]
    assert (record.family, record.given, record.mrn, record.gender) == (
        "Chalmers",
        "Peter James",
        "12345",
        "male",
    )


async def test_a_search_without_criteria_is_refused_before_calling(emrs: Emrs, keys: Keys) -> None:
    with pytest.raises(ProviderRejected):
        await epic.search_patients(epic_ctx(emrs, keys), query())
    assert not emrs.epic.requests


async def test_an_unknown_patient_is_none(emrs: Emrs, keys: Keys) -> None:
    assert await epic.get_patient(epic_ctx(emrs, keys), "no-such-patient") is None


# --- failures ---------------------------------------------------------------------------


async def test_an_emr_outage_is_unavailable_with_its_retry_after(emrs: Emrs, keys: Keys) -> None:
    ctx = epic_ctx(emrs, keys)
    await epic.get_patient(ctx, "example")
    emrs.epic.down = True
    with pytest.raises(ProviderUnavailable) as down:
        await epic.get_patient(ctx, "example")
    assert down.value.extensions["retryAfterSeconds"] == 1.0
    assert down.value.extensions["fhirIssues"] == ["transient"]


async def test_a_slow_emr_hits_the_read_timeout(emrs: Emrs, keys: Keys) -> None:
    ctx = epic_ctx(emrs, keys, read_timeout_seconds=0.3)
    await epic.get_patient(ctx, "example")
    emrs.epic.delay_seconds = 2.0
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await epic.get_patient(ctx, "example")
    assert time.monotonic() - began < 1.5


async def test_an_unreachable_emr_is_unavailable(keys: Keys) -> None:
    config = EpicConfig.model_validate(
        {
            "base_url": "http://127.0.0.1:9/fhir",  # discard port: nothing listens
            "client_id": EPIC_CLIENT,
            "key_id": EPIC_KID,
            "private_key": keys.rsa,
            "connect_timeout_seconds": 0.5,
        }
    )
    with pytest.raises(ProviderUnavailable):
        await epic.get_patient(plugin_context(config), "example")


async def test_an_operation_outcome_becomes_a_typed_error_without_its_diagnostics(
    emrs: Emrs, keys: Keys
) -> None:
    ctx = epic_ctx(emrs, keys)
    with pytest.raises(ProviderRejected) as rejected:
        await epic.push_appointment(ctx, appointment(emr_patient_id="no-such-patient"))
    assert rejected.value.extensions == {"httpStatus": 422, "fhirIssues": ["processing"]}
    assert "Patient" not in rejected.value.message


# --- writes --------------------------------------------------------------------------------


async def test_an_appointment_is_created_once_and_updated_in_place(emrs: Emrs, keys: Keys) -> None:
    """Epic answers a create with only a Location header; a retry finds the first create."""
    ctx = epic_ctx(emrs, keys, key="outbox-row-1")
    created = await epic.push_appointment(ctx, appointment())
    retried = await epic.push_appointment(ctx, appointment())
    assert created == retried and len(emrs.epic.appointments) == 1
    stored = emrs.epic.appointments[created.emr_appointment_id]
    assert stored["status"] == "booked"
    assert stored["participant"][0]["actor"]["reference"] == "Patient/example"
    assert stored["identifier"][0]["value"] == "session-1"

    moved = START + timedelta(days=1)
    await epic.push_appointment(
        ctx,
        appointment(
            starts_at=moved,
            ends_at=moved + timedelta(minutes=50),
            emr_appointment_id=created.emr_appointment_id,
        ),
    )
    await epic.push_appointment(
        ctx, appointment(status="cancelled", emr_appointment_id=created.emr_appointment_id)
    )
    stored = emrs.epic.appointments[created.emr_appointment_id]
    # Versions: created, brought up to date by the retry, moved, cancelled.
    assert stored["status"] == "cancelled" and stored["meta"]["versionId"] == "4"


async def test_a_later_state_without_the_id_updates_the_same_appointment(
    emrs: Emrs, keys: Keys
) -> None:
    """A cancel queued before the booking's id came back must not leave it booked."""
    ctx = cerner_ctx(emrs, keys)
    booked = await cerner.push_appointment(ctx, appointment(emr_patient_id="1"))
    cancelled = await cerner.push_appointment(
        ctx, appointment(emr_patient_id="1", status="cancelled")
    )
    assert booked == cancelled
    assert emrs.cerner.appointments[booked.emr_appointment_id]["status"] == "cancelled"


async def test_updating_an_appointment_the_emr_lost_is_rejected(emrs: Emrs, keys: Keys) -> None:
    with pytest.raises(ProviderRejected, match="no longer has"):
        await epic.push_appointment(epic_ctx(emrs, keys), appointment(emr_appointment_id="gone"))


async def test_pushes_are_refused_when_the_clinic_did_not_turn_them_on(
    emrs: Emrs, keys: Keys
) -> None:
    ctx = epic_ctx(emrs, keys, push_appointments=False)
    with pytest.raises(NotConfigured, match="turned off"):
        await epic.push_appointment(ctx, appointment())
    assert not emrs.epic.requests


async def test_a_document_is_filed_as_a_document_reference(emrs: Emrs, keys: Keys) -> None:
    document = DocumentPush(
        emr_patient_id="example",
        reference="doc-1",
        kind="consent",
        title="Consent form",
        content_type="application/pdf",
        created_at=START,
        content_b64="JVBERi0xLjQK",
    )
    ctx = epic_ctx(emrs, keys, push_documents=True)
    filed = await epic.push_document(ctx, document)
    again = await epic.push_document(ctx, document)
    assert filed == again and len(emrs.epic.documents) == 1
    stored = emrs.epic.documents[filed.emr_document_id]
    assert stored["content"][0]["attachment"]["data"] == "JVBERi0xLjQK"
    with pytest.raises(NotConfigured):
        await epic.push_document(epic_ctx(emrs, keys), document)


# --- Oracle Health open sandbox -------------------------------------------------------------


async def test_the_open_sandbox_reads_without_a_token_and_never_writes(
    emrs: Emrs, keys: Keys
) -> None:
    emrs.cerner.open_reads = True
    config = CernerConfig.model_validate({"base_url": emrs.cerner_url, "open_sandbox": True})
    ctx = plugin_context(config)
    await cerner.validate_config(ctx)
    assert [p.given for p in await cerner.search_patients(ctx, query(given="Eve"))] == ["Eve"]
    with pytest.raises(NotConfigured, match="read-only"):
        await cerner.push_appointment(ctx, appointment())
    assert emrs.cerner.token_requests == 0 and not emrs.cerner.appointments
    with pytest.raises(ValidationError, match="read-only"):
        CernerConfig.model_validate(
            {"base_url": emrs.cerner_url, "open_sandbox": True, "push_appointments": True}
        )


async def test_the_operations_manual_epic_variables_are_platform_defaults(
    emrs: Emrs, keys: Keys
) -> None:
    """EPIC_BASE_URL / EPIC_CLIENT_ID / EPIC_CLIENT_SECRET serve clinics that leave them empty."""
    emrs.epic.register_client("platform-client", secret="platform-secret-456")
    environ = {
        "EPIC_BASE_URL": emrs.epic_url,
        "EPIC_CLIENT_ID": "platform-client",
        "EPIC_CLIENT_SECRET": "platform-secret-456",
    }
    defaults = PlatformDefaults.load([epic.declaration], environ=environ)
    store = ConfigStore(DataCipher([Fernet.generate_key().decode()]), defaults)
    from_defaults = store.build(epic.declaration, {}, {})
    assert (await epic.get_patient(plugin_context(from_defaults), "example")) is not None  # type: ignore[arg-type]

    own = store.build(
        epic.declaration, {"client_id": EPIC_CLIENT, "key_id": EPIC_KID}, {"private_key": keys.rsa}
    )
    assert own.client_id == EPIC_CLIENT and own.base_url == emrs.epic_url  # type: ignore[attr-defined]
    assert (await epic.get_patient(plugin_context(own), "example")) is not None  # type: ignore[arg-type]
