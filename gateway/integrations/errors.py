"""Typed integration errors, shared by the gateway and by plugins.

Plugins raise these to tell the gateway what went wrong; anything else a plugin
raises is treated as PROVIDER_UNAVAILABLE. Messages reach clinic admins, so they
must never carry a secret or patient data (the gateway also redacts the clinic's
secret values from every message it passes on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.errors import GatewayError

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words


class IntegrationError(GatewayError):
    """Base of the errors dispatch raises. `counts_as_failure` feeds the circuit breaker."""

    code = "PROVIDER_UNAVAILABLE"
    counts_as_failure = True


class NotConfigured(IntegrationError):
    """No enabled plugin for the capability, or its configuration/credentials are wrong."""

    code = "NOT_CONFIGURED"


class ProviderUnavailable(IntegrationError):
    """The provider could not be reached or failed; retrying later may work."""

    code = "PROVIDER_UNAVAILABLE"


class ProviderRejected(IntegrationError):
    """The provider answered and refused this request (declined card, bad address, …)."""

    code = "PROVIDER_REJECTED"
    counts_as_failure = False  # the provider is healthy; the request was wrong


class IntegrationTimeout(IntegrationError):
    """The plugin did not answer within the configured timeout."""

    code = "TIMEOUT"


class CircuitOpen(ProviderUnavailable):
    """Calls are short-circuited after repeated failures, until the retry time."""

    counts_as_failure = False


class WebhookRejected(Exception):
    """Raised by `verify_webhook` when the signature or payload is not acceptable (HTTP 400)."""


class ContractError(Exception):
    """A plugin breaks the plugin contract; it is reported and not loaded."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced, longest first (so prefixes do not leak)."""
    for value in sorted(
        {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
    ):
        text = text.replace(value, REDACTED)
    return text


def redacted_error(
    error: IntegrationError, secrets: Iterable[str], **extensions: Any
) -> IntegrationError:
    """A copy of `error` whose message and extensions cannot disclose a secret."""
    values = list(secrets)
    clean = type(error).__new__(type(error))
    GatewayError.__init__(
        clean,
        redact(error.message, values),
        **{
            k: redact(v, values) if isinstance(v, str) else v
            for k, v in {**error.extensions, **extensions}.items()
        },
    )
    return clean
