"""Templates and provider answers, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from gateway.integrations.errors import ProviderRejected, ProviderUnavailable
from gateway.notifications import provider_http
from gateway.notifications.render import Notification, render
from gateway.notifications.service import format_time

CONTEXT = {
    "clinic_name": "Bright <Futures>",
    "first_name": "Ana",
    "starts_at": "Tue 1 Dec 2026, 09:00 (Europe/London)",
    "previous_starts_at": None,
    "duration_minutes": 50,
    "modality": "video",
    "amount": "USD 120.00",
    "reference": "pay-1",
    "link": "https://app.test/reset-password?token=abc&x=1",
    "expires_days": 7,
    "expires_minutes": 60,
}


@pytest.mark.parametrize("notification", list(Notification))
def test_every_notification_renders_text_and_escaped_html(notification: Notification) -> None:
    rendered = render(notification, CONTEXT)
    assert rendered.subject and "\n" not in rendered.subject
    assert "Ana" in rendered.text and "Bright <Futures>" in rendered.text
    assert "Bright &lt;Futures&gt;" in rendered.html and "<Futures>" not in rendered.html


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(Exception, match="first_name"):
        render(Notification.SESSION_BOOKED, {k: v for k, v in CONTEXT.items() if k != "first_name"})


def test_times_are_shown_in_the_clinic_zone_with_its_name() -> None:
    moment = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert format_time(moment, "Europe/London") == "Wed 1 Jul 2026, 09:00 (Europe/London)"
    assert format_time(moment, "Not/AZone") == "Wed 1 Jul 2026, 08:00 (UTC)"


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://x"))


def test_retry_after_as_seconds_or_http_date() -> None:
    assert provider_http.retry_after_seconds("30") == 30
    later = datetime.now(UTC) + timedelta(seconds=90)
    seconds = provider_http.retry_after_seconds(format_datetime(later, usegmt=True))
    assert seconds is not None and 85 <= seconds <= 90
    assert provider_http.retry_after_seconds("soon") is None


def test_provider_answers_become_retry_or_dead_letter() -> None:
    with pytest.raises(ProviderUnavailable) as limited:
        provider_http.check(_response(429, **{"Retry-After": "12"}), "SendGrid")
    assert limited.value.extensions["retryAfterSeconds"] == 12
    with pytest.raises(ProviderUnavailable):
        provider_http.check(_response(502), "Mailgun")
    with pytest.raises(ProviderRejected, match=r"\(400\): personalizations"):
        provider_http.check(_response(400), "SendGrid", "personalizations")
    with pytest.raises(ProviderRejected, match="API key"):
        provider_http.check(_response(403), "Mailgun")
    provider_http.check(_response(202), "SendGrid")
