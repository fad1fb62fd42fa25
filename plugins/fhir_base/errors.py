"""FHIR answers turned into the gateway's typed integration errors.

Messages never carry OperationOutcome diagnostics (they may quote patient data):
only the HTTP status and the issue codes, which are a fixed FHIR vocabulary.
"""

from __future__ import annotations

from typing import Any

import requests

from gateway.integrations import NotConfigured, ProviderRejected, ProviderUnavailable
from gateway.integrations.errors import IntegrationError


def issue_codes(response: requests.Response) -> list[str]:
    """The `issue.code`s of an OperationOutcome body, if the answer is one."""
    try:
        body: Any = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return []
    return [str(i.get("code")) for i in body.get("issue") or [] if isinstance(i, dict)][:5]


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def from_response(vendor: str, response: requests.Response) -> IntegrationError:
    """The typed error for a FHIR (or token endpoint) answer with status >= 400."""
    status = response.status_code
    extensions: dict[str, Any] = {"httpStatus": status}
    codes = issue_codes(response)
    if codes:
        extensions["fhirIssues"] = codes
    if status in (401, 403):
        return NotConfigured(
            f"{vendor} refused access ({status}): check the app registration and its scopes.",
            **extensions,
        )
    if status == 429 or status >= 500:
        wait = _retry_after(response)
        if wait is not None:
            extensions["retryAfterSeconds"] = wait
        return ProviderUnavailable(f"{vendor} is unavailable ({status}).", **extensions)
    return ProviderRejected(f"{vendor} rejected the request ({status}).", **extensions)


def unreachable(vendor: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"{vendor} could not be reached.")
