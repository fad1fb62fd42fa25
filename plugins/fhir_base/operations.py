"""The EMR hooks' bodies, shared by the Epic and Oracle Health plugins.

Each call opens one bounded connection for the clinic's config and runs its
FHIR work in a worker thread. Searches follow Bundle `next` links on the same
server only, up to `max_pages`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urljoin

import requests
from fhirclient.models.appointment import Appointment
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.fhirabstractresource import FHIRAbstractResource
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer

from gateway.integrations import (
    AppointmentPush,
    DocumentPush,
    EmrPatient,
    NotConfigured,
    PatientQuery,
    PluginContext,
    ProviderRejected,
    PushedAppointment,
    PushedDocument,
)
from plugins.fhir_base import mapping
from plugins.fhir_base.config import FhirConfig
from plugins.fhir_base.connection import FhirConnection, NotFound


def _connection(ctx: PluginContext, vendor: str) -> FhirConnection:
    return FhirConnection(ctx.config, vendor)


async def validate_config(ctx: PluginContext, vendor: str) -> None:
    """Reads the CapabilityStatement and, unless open, obtains a token with the scopes."""
    connection = _connection(ctx, vendor)

    def check(server: FHIRServer) -> None:
        statement = CapabilityStatement.read_from("metadata", server)
        if statement.fhirVersion and not str(statement.fhirVersion).startswith("4."):
            raise NotConfigured(f"{vendor} at this address does not speak FHIR R4.")

    await connection.call(check)


async def health_check(ctx: PluginContext, vendor: str) -> str:
    await validate_config(ctx, vendor)
    return f"{vendor} FHIR R4 reachable"


def _same_server(connection: FhirConnection, url: str) -> bool:
    return url.startswith(connection.base + "/")


async def search_patients(ctx: PluginContext, vendor: str, query: PatientQuery) -> list[EmrPatient]:
    if not (query.family or query.given or query.birth_date or query.identifier):
        raise ProviderRejected("Search by name, birth date or identifier.")
    config: FhirConfig = ctx.config
    connection = _connection(ctx, vendor)

    def search(server: FHIRServer) -> list[EmrPatient]:
        found: list[EmrPatient] = []
        path: str | None = "Patient?" + urlencode(mapping.search_params(query))
        pages = 0
        while path and pages < config.max_pages and len(found) < query.limit:
            bundle = Bundle.read_from(path, server)
            pages += 1
            for entry in bundle.entry or []:
                # Search bundles may carry OperationOutcome entries (search.mode = outcome).
                if isinstance(entry.resource, Patient) and len(found) < query.limit:
                    found.append(mapping.to_emr_patient(entry.resource))
            following = next(
                (link.url for link in bundle.link or [] if link.relation == "next"), None
            )
            path = None
            if following:
                absolute = urljoin(connection.base + "/", following)
                path = absolute if _same_server(connection, absolute) else None
        return found

    return await connection.call(search)


async def get_patient(ctx: PluginContext, vendor: str, emr_id: str) -> EmrPatient | None:
    connection = _connection(ctx, vendor)
    try:
        patient = await connection.call(lambda server: Patient.read(emr_id, server))
    except NotFound:
        return None
    return mapping.to_emr_patient(patient)


def _require_write(config: FhirConfig, vendor: str, turned_on: bool, what: str) -> None:
    if config.open_access:
        raise NotConfigured(f"{vendor} open access is read-only.")
    if not turned_on:
        raise NotConfigured(f"Pushing {what} to {vendor} is turned off for this clinic.")


def _created_id(vendor: str, response: requests.Response, resource_type: str) -> str:
    """The new resource's id: from the body, else from the Location header (Epic's style)."""
    body = response.json() if response.content else None
    if isinstance(body, dict) and body.get("id"):
        return str(body["id"])
    location = response.headers.get("Location", "")
    parts = location.split("/_history")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    raise ProviderRejected(f"{vendor} did not return the new {resource_type} id.")


def _write(
    connection: FhirConnection,
    resource: FHIRAbstractResource,
    identifier: str,
    idempotency_key: str | None,
    *,
    mutable: bool,
) -> str:
    """Create (conditionally on our identifier) or update `resource`; returns its EMR id.

    When the conditional create finds an earlier one, a `mutable` resource is brought up
    to date with this state; a document is filed once and left as it is.
    """

    def work(server: FHIRServer) -> str:
        kind = resource.resource_type
        if resource.id:
            server.put_json(f"{kind}/{resource.id}", resource.as_json())
            return str(resource.id)
        # If-None-Exist: a retried create returns the resource the first try made.
        connection.session.extra_headers = {"If-None-Exist": f"identifier={identifier}"}
        if idempotency_key:
            connection.session.extra_headers["X-Request-Id"] = idempotency_key
        try:
            response = server.post_json(kind, resource.as_json())
        finally:
            connection.session.extra_headers = {}
        emr_id = _created_id(connection.vendor, response, kind)
        if response.status_code == 200 and mutable:
            # An earlier try created it (its answer was lost): bring it up to date.
            resource.id = emr_id
            server.put_json(f"{kind}/{emr_id}", resource.as_json())
        return emr_id

    return connection.call_sync(work)


async def push_appointment(
    ctx: PluginContext, vendor: str, appointment: AppointmentPush
) -> PushedAppointment:
    config: FhirConfig = ctx.config
    _require_write(config, vendor, config.push_appointments, "appointments")
    connection = _connection(ctx, vendor)
    resource: Appointment = mapping.appointment(appointment)
    identifier = f"{mapping.SESSION_ID_SYSTEM}|{appointment.reference}"
    try:
        emr_id = await asyncio.to_thread(
            _write, connection, resource, identifier, ctx.idempotency_key, mutable=True
        )
    except NotFound:
        raise ProviderRejected(f"{vendor} no longer has this appointment.") from None
    return PushedAppointment(emr_appointment_id=emr_id)


async def push_document(ctx: PluginContext, vendor: str, document: DocumentPush) -> PushedDocument:
    config: FhirConfig = ctx.config
    _require_write(config, vendor, config.push_documents, "documents")
    connection = _connection(ctx, vendor)
    resource = mapping.document_reference(document)
    identifier = f"{mapping.DOCUMENT_ID_SYSTEM}|{document.reference}"
    try:
        emr_id = await asyncio.to_thread(
            _write, connection, resource, identifier, ctx.idempotency_key, mutable=False
        )
    except NotFound:
        raise ProviderRejected(f"{vendor} did not accept the document.") from None
    return PushedDocument(emr_document_id=emr_id)
