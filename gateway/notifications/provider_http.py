"""How the email plugins read a provider's HTTP answer (SendGrid and Mailgun agree).

429 and 5xx: try again later (ProviderUnavailable, with the provider's Retry-After);
other 4xx: this request will never work (ProviderRejected: the outbox dead-letters
it with the reason). Reasons name the status and field, never an address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from gateway.integrations.errors import ProviderRejected, ProviderUnavailable


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def check(response: httpx.Response, provider: str, detail: str | None = None) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429 or status >= 500:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        what = "rate-limited the gateway" if status == 429 else f"failed ({status})"
        raise ProviderUnavailable(f"{provider} {what}.", retryAfterSeconds=wait)
    if status in (401, 403):
        raise ProviderRejected(f"{provider} refused the API key ({status}).")
    suffix = f": {detail}" if detail else ""
    raise ProviderRejected(f"{provider} rejected the message ({status}){suffix}.")


async def send(
    http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: object
) -> httpx.Response:
    try:
        return await http.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            f"{provider} could not be reached ({type(exc).__name__})."
        ) from None
