"""The data that crosses the plugin contract: what hooks receive and return.

All are pydantic models so the outbox can store a queued call as JSON and rebuild
it exactly. Money is in minor units; nothing here is logged by the gateway.
"""

from __future__ import annotations

import enum
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.integrations.errors import redact

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.events import EventContext

CONTRACT_VERSION = "1.0"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class Kind(enum.StrEnum):
    EMR = "emr"
    PAYMENT = "payment"
    EMAIL = "email"
    STORAGE = "storage"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- email -------------------------------------------------------------------


class EmailMessage(_Data):
    to: list[str] = Field(min_length=1)
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    sender_name: str | None = Field(
        default=None, description="Display name for the From address (the clinic's own)"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Identifiers only, never PHI")


class SentEmail(_Data):
    provider_message_id: str


# --- payment -----------------------------------------------------------------


class PaymentRequest(_Data):
    amount: int = Field(gt=0, description="Minor units (cents, paise)")
    currency: str = Field(min_length=3, max_length=3)
    description: str
    reference: str = Field(description="Gateway-side id the payment belongs to")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Identifiers only, never PHI"
    )
    provider_payment_id: str | None = Field(
        default=None,
        description="Set when the payment was created before: return it again, unchanged",
    )


class PaymentResult(_Data):
    provider_payment_id: str
    status: str = Field(description="requires_action | pending | succeeded | failed")
    client_secret: str | None = Field(
        default=None, description="Handed to the front end's checkout, if any"
    )
    public_key: str | None = Field(
        default=None,
        description="The publishable key / key id the front end's checkout needs, if any",
    )
    provider_charge_id: str | None = Field(
        default=None, description="The captured payment's id, where the provider names it apart"
    )
    failure_code: str | None = Field(
        default=None, description="The provider's decline code, if failed"
    )


class PaymentConfirmation(_Data):
    """What the front end's checkout handed back after the payer paid (signed by the provider)."""

    provider_payment_id: str = Field(description="The id create_payment returned")
    fields: dict[str, str] = Field(description="The checkout callback's fields, as received")


class RefundRequest(_Data):
    provider_payment_id: str
    amount: int | None = Field(None, gt=0, description="Minor units; None refunds everything")
    reason: str | None = None


class RefundResult(_Data):
    provider_refund_id: str
    status: str


# --- emr -----------------------------------------------------------------------


class PatientQuery(_Data):
    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    identifier: str | None = None
    limit: int = Field(20, ge=1, le=100)


class EmrPatient(_Data):
    emr_id: str
    family: str
    given: str
    birth_date: date | None = None
    email: str | None = None
    phone: str | None = None
    gender: str | None = Field(None, description="FHIR administrative gender")
    mrn: str | None = Field(None, description="The EMR's medical record number, when it has one")


class AppointmentPush(_Data):
    emr_patient_id: str
    starts_at: datetime
    ends_at: datetime
    description: str
    reference: str = Field(description="Gateway-side session id, for idempotency")
    status: str = Field(
        "booked", description="FHIR Appointment.status: booked | cancelled | fulfilled | noshow"
    )
    emr_appointment_id: str | None = Field(
        None, description="Set when the appointment was pushed before: update it"
    )


class PushedAppointment(_Data):
    emr_appointment_id: str


class DocumentPush(_Data):
    """A patient document for the EMR (a FHIR DocumentReference with the file attached)."""

    emr_patient_id: str
    reference: str = Field(description="Gateway-side document id, for idempotency")
    kind: str = Field(description="consent | intake | lab_report | other")
    title: str
    content_type: str
    created_at: datetime
    content_b64: str = Field(description="The file's bytes, base64")


class PushedDocument(_Data):
    emr_document_id: str


# --- webhooks --------------------------------------------------------------------


class AlertNotice(_Data):
    """A platform alert firing or resolving (gateway.ops.alerts): no PHI, no clinic data."""

    key: str
    severity: str  # critical | warning
    priority: str  # P0 … P3
    title: str
    message: str
    state: str  # firing | resolved
    value: float | None = None
    threshold: float | None = None
    since: datetime | None = None


class WebhookRequest(_Data):
    """The inbound request exactly as received: verify signatures on `body`, not on parsed JSON."""

    body: bytes
    headers: dict[str, str] = Field(description="Lower-cased header names")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class WebhookEvent(_Data):
    provider_event_id: str = Field(min_length=1, max_length=255)
    type: str = Field(max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)


# --- storage ---------------------------------------------------------------------


class StoredObject(_Data):
    """What a storage plugin kept: the object's key and its size in bytes (ciphertext)."""

    key: str
    size: int = Field(ge=0)


# --- declaration and per-call context ----------------------------------------------


@dataclass(frozen=True)
class PluginDeclaration:
    """What a plugin is. Put one on the object the entry point loads, as `declaration`."""

    name: str
    kind: Kind
    label: str
    config_model: type[BaseModel]
    description: str = ""
    version: str = "0"
    # Platform-wide defaults: e.g. "EPIC_" reads EPIC_CLIENT_ID for field `client_id`.
    env_prefix: str | None = None
    contract: str = CONTRACT_VERSION

    def secret_fields(self) -> list[str]:
        return secret_fields(self.config_model)


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Fields typed SecretStr (or marked json_schema_extra={"secret": True}) are secret."""
    names = []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("secret") or _mentions_secret(info.annotation):
            names.append(name)
    return names


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_mentions_secret(arg) for arg in getattr(annotation, "__args__", ()) or ())


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A plugin's logger: the clinic's secret values never reach a log line."""

    def __init__(self, logger: logging.Logger, secrets: list[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("exc_info", None)  # tracebacks may quote secrets; plugins log messages only
            self.logger.log(level, redact(text, self._secrets), **kwargs)


@dataclass
class PluginContext:
    """Everything a hook may use for one clinic. Secrets live only in `config`.

    `clinic_id` is None only for platform-level hooks (`alert`), whose config comes
    from the operator's platform defaults.
    """

    clinic_id: uuid.UUID | None
    plugin: str
    config: Any  # an instance of the plugin's config_model
    http: httpx.AsyncClient
    log: logging.LoggerAdapter  # type: ignore[type-arg]
    idempotency_key: str | None = None
    db: AsyncSession | None = field(default=None, repr=False)
    actor_user_id: uuid.UUID | None = None
    # Only inside handle_webhook: emit domain events (gateway.events) in `db`'s transaction.
    events: EventContext | None = field(default=None, repr=False)

    def record_event(
        self, action: str, *, target_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """Record an effect (audit row) in the current transaction; only inside handle_webhook."""
        if self.db is None:
            raise RuntimeError("record_event is only available inside handle_webhook")
        from gateway.services import audit

        audit.record(
            self.db,
            f"{self.plugin}.{action}",
            clinic_id=self.clinic_id,
            actor_user_id=self.actor_user_id,
            target_type="integration",
            target_id=target_id,
            details={"plugin": self.plugin, **(details or {})},
        )


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"plugin name {name!r} must match {NAME_PATTERN.pattern}")


__all__ = [
    "CONTRACT_VERSION",
    "AlertNotice",
    "AppointmentPush",
    "DocumentPush",
    "EmailMessage",
    "EmrPatient",
    "Kind",
    "PatientQuery",
    "PaymentConfirmation",
    "PaymentRequest",
    "PaymentResult",
    "PluginContext",
    "PluginDeclaration",
    "PushedAppointment",
    "PushedDocument",
    "RefundRequest",
    "RefundResult",
    "SentEmail",
    "StoredObject",
    "WebhookEvent",
    "WebhookRequest",
]
