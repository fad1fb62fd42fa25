"""Render a notification from its Jinja2 templates (text and HTML) in templates/.

Each notification has `<name>.txt` (which sets `subject`) and `<name>.html`.
Templates receive only what the recipient needs: first name, clinic name, times,
amounts, links. Never notes, diagnoses or cancellation reasons.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


class Notification(enum.StrEnum):
    SESSION_BOOKED = "session_booked"
    SESSION_RESCHEDULED = "session_rescheduled"
    SESSION_CANCELLED = "session_cancelled"
    SESSION_REMINDER = "session_reminder"
    PAYMENT_RECEIPT = "payment_receipt"
    USER_INVITATION = "user_invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105  (a notification name, not a secret)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


# Text templates are not HTML: autoescape only the .html ones. StrictUndefined turns a
# missing variable into an error at queue time instead of a blank in someone's inbox.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render(notification: Notification, context: dict[str, Any]) -> Rendered:
    text_module = _env.get_template(f"{notification.value}.txt").make_module(context)
    declared = getattr(text_module, "subject", None)
    if declared is None:
        raise ValueError(f"{notification.value}.txt must set `subject`")
    subject = " ".join(str(declared).split())  # one line, whatever the template did
    html = _env.get_template(f"{notification.value}.html").render(context, subject=subject)
    return Rendered(subject=subject, text=str(text_module).strip() + "\n", html=html)
