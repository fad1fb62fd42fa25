# mypy: disable-error-code="empty-body"
"""The plugin contract: every hook a Santana plugin may implement.

This module is the public API for plugin authors and is versioned by
CONTRACT_VERSION (a major bump breaks plugins). Every hook is `async` and
receives a `PluginContext` for one clinic; the gateway calls only the clinic's
enabled plugin, so each hook is `firstresult` and returns one value. Raise the
errors in `gateway.integrations.errors` to report failures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pluggy
from pydantic import BaseModel

from gateway.integrations.types import (
    CONTRACT_VERSION,
    AlertNotice,
    AppointmentPush,
    DocumentPush,
    EmailMessage,
    EmrPatient,
    Kind,
    PatientQuery,
    PaymentConfirmation,
    PaymentRequest,
    PaymentResult,
    PluginContext,
    PushedAppointment,
    PushedDocument,
    RefundRequest,
    RefundResult,
    SentEmail,
    StoredObject,
    WebhookEvent,
    WebhookRequest,
)

PROJECT = "santana"
ENTRY_POINT_GROUP = "santana"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- lifecycle: every kind ---------------------------------------------------------


@hookspec(firstresult=True)
async def validate_config(ctx: PluginContext) -> None:
    """Check the clinic's config and credentials (may call the provider); raise NotConfigured."""


@hookspec(firstresult=True)
async def health_check(ctx: PluginContext) -> str | None:
    """Report whether the provider is reachable for this clinic; return a short note or raise."""


@hookspec(firstresult=True)
async def on_enable(ctx: PluginContext) -> None:
    """Optional: prepare the provider side (e.g. a webhook) when a clinic enables the plugin."""


@hookspec(firstresult=True)
async def on_disable(ctx: PluginContext) -> None:
    """Optional: tidy up the provider side when a clinic disables the plugin (never blocks it)."""


@hookspec(firstresult=True)
async def verify_webhook(ctx: PluginContext, request: WebhookRequest) -> WebhookEvent:
    """Verify a webhook's signature on the raw body; return the event or raise WebhookRejected."""


@hookspec(firstresult=True)
async def handle_webhook(ctx: PluginContext, event: WebhookEvent) -> None:
    """Apply a verified, first-seen event inside the transaction that records it (`ctx.db`)."""


# --- email ----------------------------------------------------------------------------


@hookspec(firstresult=True)
async def send_email(ctx: PluginContext, message: EmailMessage) -> SentEmail:
    """Send one email; honour `ctx.idempotency_key` so a retried delivery is not sent twice."""


# --- payment ----------------------------------------------------------------------------


@hookspec(firstresult=True)
async def create_payment(ctx: PluginContext, payment: PaymentRequest) -> PaymentResult:
    """Create a payment (intent/order) with the provider, idempotent on `ctx.idempotency_key`."""


@hookspec(firstresult=True)
async def refund_payment(ctx: PluginContext, refund: RefundRequest) -> RefundResult:
    """Refund all or part of a captured payment, idempotent on `ctx.idempotency_key`."""


@hookspec(firstresult=True)
async def confirm_payment(ctx: PluginContext, confirmation: PaymentConfirmation) -> PaymentResult:
    """Optional: verify a checkout callback's signature and return the payment's status."""


# --- emr --------------------------------------------------------------------------------


@hookspec(firstresult=True)
async def search_patients(ctx: PluginContext, query: PatientQuery) -> list[EmrPatient]:
    """Find patients in the clinic's EMR by name, birth date or identifier."""


@hookspec(firstresult=True)
async def get_patient(ctx: PluginContext, emr_id: str) -> EmrPatient | None:
    """Read one patient from the clinic's EMR by its EMR id; None when it does not exist."""


@hookspec(firstresult=True)
async def push_appointment(ctx: PluginContext, appointment: AppointmentPush) -> PushedAppointment:
    """Create or update a counseling appointment in the clinic's EMR."""


@hookspec(firstresult=True)
async def push_document(ctx: PluginContext, document: DocumentPush) -> PushedDocument:
    """Optional: file a patient document in the EMR (a FHIR DocumentReference)."""


# --- platform -------------------------------------------------------------------------


@hookspec(firstresult=True)
async def alert(ctx: PluginContext, notice: AlertNotice) -> None:
    """Forward a platform alert (fired or resolved) to people: chat, email, pager.

    Called for each plugin named in ALERT_PLUGINS, with `ctx.clinic_id` None and the
    config from the operator's platform defaults; any plugin kind may implement it.
    """


# --- storage ----------------------------------------------------------------------------


@hookspec(firstresult=True)
async def put_object(ctx: PluginContext, key: str, path: str) -> StoredObject:
    """Store the local file at `path` (already encrypted) under `key`, streaming it from disk."""


@hookspec(firstresult=True)
async def open_object(ctx: PluginContext, key: str) -> AsyncIterator[bytes]:
    """Return an async iterator over the stored bytes of `key`; raise ProviderRejected if absent."""


@hookspec(firstresult=True)
async def delete_object(ctx: PluginContext, key: str) -> None:
    """Delete the object stored under `key`; deleting a missing object is not an error."""


# --- what the gateway knows about each hook ------------------------------------------------


@dataclass(frozen=True)
class HookInfo:
    kind: Kind | None  # None: any kind may implement it
    required: bool
    discloses_phi: bool  # calls are audited
    args: dict[str, type[BaseModel] | type[str]] = field(
        default_factory=dict
    )  # outbox (de)serialisation
    returns: type[BaseModel] | None = None  # checked after the call


HOOKS: dict[str, HookInfo] = {
    "validate_config": HookInfo(None, required=True, discloses_phi=False),
    "health_check": HookInfo(None, required=True, discloses_phi=False),
    "alert": HookInfo(None, required=False, discloses_phi=False, args={"notice": AlertNotice}),
    "on_enable": HookInfo(None, required=False, discloses_phi=False),
    "on_disable": HookInfo(None, required=False, discloses_phi=False),
    "verify_webhook": HookInfo(
        None,
        required=False,
        discloses_phi=False,
        args={"request": WebhookRequest},
        returns=WebhookEvent,
    ),
    "handle_webhook": HookInfo(
        None, required=False, discloses_phi=False, args={"event": WebhookEvent}
    ),
    "send_email": HookInfo(
        Kind.EMAIL,
        required=True,
        discloses_phi=True,
        args={"message": EmailMessage},
        returns=SentEmail,
    ),
    "create_payment": HookInfo(
        Kind.PAYMENT,
        required=True,
        discloses_phi=False,
        args={"payment": PaymentRequest},
        returns=PaymentResult,
    ),
    "refund_payment": HookInfo(
        Kind.PAYMENT,
        required=True,
        discloses_phi=False,
        args={"refund": RefundRequest},
        returns=RefundResult,
    ),
    "confirm_payment": HookInfo(
        Kind.PAYMENT,
        required=False,
        discloses_phi=False,
        args={"confirmation": PaymentConfirmation},
        returns=PaymentResult,
    ),
    "search_patients": HookInfo(
        Kind.EMR, required=True, discloses_phi=True, args={"query": PatientQuery}
    ),
    "get_patient": HookInfo(Kind.EMR, required=True, discloses_phi=True, args={"emr_id": str}),
    "push_appointment": HookInfo(
        Kind.EMR,
        required=True,
        discloses_phi=True,
        args={"appointment": AppointmentPush},
        returns=PushedAppointment,
    ),
    "push_document": HookInfo(
        Kind.EMR,
        required=False,
        discloses_phi=True,
        args={"document": DocumentPush},
        returns=PushedDocument,
    ),
    "put_object": HookInfo(
        Kind.STORAGE,
        required=True,
        discloses_phi=False,  # ciphertext only: the key never leaves the gateway
        args={"key": str, "path": str},
        returns=StoredObject,
    ),
    "open_object": HookInfo(Kind.STORAGE, required=True, discloses_phi=False, args={"key": str}),
    "delete_object": HookInfo(Kind.STORAGE, required=True, discloses_phi=False, args={"key": str}),
}

# Hooks that must come as a pair: a plugin that verifies webhooks must also handle them.
PAIRED_HOOKS = {"verify_webhook": "handle_webhook", "handle_webhook": "verify_webhook"}

__all__ = [
    "CONTRACT_VERSION",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "PROJECT",
    "HookInfo",
    "hookimpl",
    "hookspec",
]
