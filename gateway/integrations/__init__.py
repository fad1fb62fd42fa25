"""The integration layer, and the public API for plugin authors.

A plugin imports what it needs from here:

    from gateway.integrations import hookimpl, Kind, PluginDeclaration, SentEmail, ...

Everything re-exported below is covered by CONTRACT_VERSION.
"""

from gateway.integrations.errors import (
    CircuitOpen,
    IntegrationError,
    IntegrationTimeout,
    NotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
)
from gateway.integrations.hookspecs import ENTRY_POINT_GROUP, hookimpl
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
    PluginDeclaration,
    PushedAppointment,
    PushedDocument,
    RefundRequest,
    RefundResult,
    SentEmail,
    WebhookEvent,
    WebhookRequest,
)

__all__ = [
    "CONTRACT_VERSION",
    "ENTRY_POINT_GROUP",
    "AlertNotice",
    "AppointmentPush",
    "CircuitOpen",
    "DocumentPush",
    "EmailMessage",
    "EmrPatient",
    "IntegrationError",
    "IntegrationTimeout",
    "Kind",
    "NotConfigured",
    "PatientQuery",
    "PaymentConfirmation",
    "PaymentRequest",
    "PaymentResult",
    "PluginContext",
    "PluginDeclaration",
    "ProviderRejected",
    "ProviderUnavailable",
    "PushedAppointment",
    "PushedDocument",
    "RefundRequest",
    "RefundResult",
    "SentEmail",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookRequest",
    "hookimpl",
]
